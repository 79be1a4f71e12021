# syntax=docker/dockerfile:1
FROM debian:bookworm-slim AS os
RUN useradd --create-home svc
USER svc
RUN <<EOT
echo "USER root here is a heredoc's text"
EOT
FROM os
ENV \
  # a comment inside a continuation
  A=1
