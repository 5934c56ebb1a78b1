"""Every JSON route of the app declares its response model (issue 23), so the OpenAPI document that
integrators read has a schema for each answer. Routes without a JSON body are exempt by kind: HTML
pages and plain text by their response class, 204 by having no body, and the file, image and
redirect answers named below."""

import typing

from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.routing import APIRoute, iter_route_contexts

from app.main import create_app
from app.settings import Settings

# endpoints that answer with a file, an image, a redirect or the Prometheus text format
NOT_JSON = {
    "app.api.collection.download_attachment",  # the attachment file
    "app.api.owner.vehicle_file",  # PDF
    "app.api.regulator.statistics_export",  # CSV / XLSX
    "app.api.regulator.claim_photo",  # image
    "app.api.public.notice_attachment",  # the attachment file
    "app.api.ops.metrics",  # Prometheus exposition
    "app.web.public.stylesheet",
    "app.web.public.notice_file",
    "app.web.owner.vehicle_pdf",
    "app.web.regulator.stats_export",
    "app.web.regulator.photo",
    # the portal's form posts answer with a redirect
    "app.web.owner.logout",
    "app.web.owner.notifications_read",
    "app.web.owner.revoke",
    "app.web.regulator.logout",
    "app.web.regulator.review",
    "app.web.shop.logout",
}


def routes() -> list[tuple[str, str, APIRoute]]:
    app = create_app(Settings(secret_key="s" * 32))
    found = []
    for c in iter_route_contexts(app.routes):
        if isinstance(c.route, APIRoute):
            name = f"{c.route.endpoint.__module__}.{c.route.endpoint.__name__}"
            found.append((f"{','.join(sorted(c.methods or []))} {c.path}", name, c.route))
    return found


def json_routes() -> list[tuple[str, str, APIRoute]]:
    return [
        (where, name, r)
        for where, name, r in routes()
        if name not in NOT_JSON
        and r.status_code != 204
        and getattr(r.response_class, "value", r.response_class) not in (HTMLResponse, PlainTextResponse)
    ]


def test_every_json_route_declares_its_response_model():
    missing = [f"{where} ({name})" for where, name, r in json_routes() if r.response_model is None]
    assert not missing, "JSON routes without a response model:\n" + "\n".join(missing)


def test_no_response_model_is_an_untyped_dict():
    untyped = [
        f"{where} ({name}): {r.response_model}"
        for where, name, r in json_routes()
        if r.response_model is not None and "typing.Any" in str(r.response_model)
    ]
    assert not untyped, "\n".join(untyped)


def test_the_exempt_endpoints_exist():
    names = {name for _, name, _ in routes()}
    assert names >= NOT_JSON, NOT_JSON - names


def test_exempt_means_not_json():
    """An endpoint named in NOT_JSON answers with a Response of its own, never a model."""
    for _, name, r in routes():
        if name in NOT_JSON:
            assert r.response_model is None, name
            returns = typing.get_type_hints(r.endpoint).get("return")
            assert returns is not None and "Response" in getattr(returns, "__name__", ""), name
