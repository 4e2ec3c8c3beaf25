"""The service layer: store, jobs, web app and CLI wired around the pure engine."""


def create_app(*args, **kwargs):
    """The Flask app (`app:create_app`), imported lazily so the CLI does not load the web stack."""
    from app.web import create_app as factory

    return factory(*args, **kwargs)
