"""Code shared by every ACME data-platform job."""
