"""One module per JSON-RPC method, plus the shared pieces every method goes through.

``handler.make_handler`` wraps a ``MethodSpec``: validate params (msgspec), run the service, map
any failure to a JSON-RPC error with a ``RobotError``, return builtins. ``runtime.Runtime`` holds the
warm state (config, database, engine) and the in-flight tasks that shutdown must drain.
"""
