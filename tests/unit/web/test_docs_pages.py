"""The offline API docs and the pages' security policy (pure parts)."""

from __future__ import annotations

from importlib.metadata import version

from api.web.docs import OPENAPI_TAGS, VENDOR, add_examples, docs_router
from api.web.pages import STATIC, content_security_policy


def test_docs_pages_load_every_asset_from_the_vendored_folder() -> None:
    router = docs_router("/openapi.json", "UrbanPulse")
    pages = {route.path: route.endpoint() for route in router.routes}  # type: ignore[attr-defined]
    for path in ("/docs", "/redoc"):
        html = pages[path].body.decode()
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis" not in html
        assert "fastapi.tiangolo.com" not in html
        for url in [u for u in html.split('"') if u.startswith(VENDOR)]:
            assert (STATIC / url.removeprefix("/web/static/")).is_file(), url
    assert '"validatorUrl": null' in pages["/docs"].body.decode()


def test_examples_go_into_the_200_answers_they_name() -> None:
    schema = {
        "paths": {
            "/v1/latest": {"get": {"responses": {"200": {"content": {"application/geo+json": {}}}}}}
        }
    }
    add_examples(schema)
    answer = schema["paths"]["/v1/latest"]["get"]["responses"]["200"]
    example = answer["content"]["application/geo+json"]["example"]
    assert example["type"] == "FeatureCollection"


def test_every_tag_has_a_description() -> None:
    assert all(tag["description"] for tag in OPENAPI_TAGS)


def test_the_pages_may_load_only_from_the_api_unless_tiles_are_configured() -> None:
    policy = content_security_policy("")
    assert "default-src 'self'" in policy and "img-src 'self' data:;" in policy
    tiles = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tile.example.org;" in tiles


def test_the_openapi_document_describes_every_tag_its_routes_use() -> None:
    from api.app import create_app
    from urbanpulse.settings import Settings

    schema = create_app(Settings()).openapi()  # builds the document; asks no server anything
    used = {tag for path in schema["paths"].values() for op in path.values() for tag in op["tags"]}
    described = {tag["name"] for tag in schema["tags"]}
    assert sorted(used - described) == []
    assert schema["info"]["version"] == version("urbanpulse")
    assert "/v1/deadletters" in schema["paths"]
    assert not any(p in schema["paths"] for p in ("/", "/docs", "/web/map.json"))
