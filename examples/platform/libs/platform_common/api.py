async def app(scope, receive, send):  # placeholder ASGI app for the pipeline server
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
