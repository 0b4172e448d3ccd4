"""Child process: serve moto on (host, port), print ``PORT n`` once bound."""

import sys


def untrack_models() -> None:
    """Stop moto keeping every model it ever made.

    moto's ``BaseModel.__new__`` appends each instance to a class-level list (for its
    dashboard and ``reset``): every S3 key, upload part and DynamoDB item version it
    ever made stays alive after its delete or overwrite, so a server that lives for a
    whole test session grows without bound (0.4-0.65 GiB per xdist worker late in the
    suite) and its garbage collector walks all of it.  Nobody here reads the dashboard;
    with this, a deleted object is freed as soon as moto's backends drop it.
    """
    from moto.core.common_models import BaseModel

    def new(cls, *args, **kwargs):
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    untrack_models()
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
