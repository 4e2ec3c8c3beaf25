"""The service layer: store, jobs, web app and CLI wired around the pure engine."""
