"""The API's HTTP routes, one module per resource; ``api.app.create_app`` includes them."""
