#!/usr/bin/env python3
"""Seed data for the contract test (scripts/contract-test).

Creates drop links through the API (one of them sent by email to the test's
mail sink) and submits secrets through the public
drop form (as a customer's browser does: the page's CSRF token and cookie),
then prints a Schemathesis configuration that offers their ids as values for
`{id}` and the id filters half of the time, so the secret operations meet real
records (reveal, ingested, check, shred) and not only unknown ids.

Usage: contract-seed.py PUBLIC_URL INTERNAL_URL ADMIN_TOKEN
"""

import http.cookiejar
import json
import re
import sys
import time
import urllib.parse
import urllib.request

SECRETS = 4


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def api(internal, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(internal + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def submit(public, url, n):
    """Fills in the drop form of `url` (a generic link) once."""
    url = public + urllib.parse.urlsplit(url).path  # the link as the server is reached
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    with opener.open(url, timeout=10) as resp:
        page = resp.read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    fields = {"csrf_token": csrf}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields.setdefault(name, value)
    fields.update(
        {
            "submitter_name": f"Contract Test {n}",
            "submitter_email": f"contract{n}@example.com",
            "label": f"seed {n}",
            "secret": f"contract-test-secret-{n}-0123456789abcdef",
        }
    )
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Origin", public)
    try:
        opener.open(req, timeout=10)
    except urllib.error.HTTPError as e:  # the 303 to the receipt
        if e.code != 303:
            raise SystemExit(f"seeding: the drop form answered {e.code}")


def main():
    public, internal, token = sys.argv[1:4]
    links = []
    for n in range(SECRETS):
        link = api(internal, token, "POST", "/api/v1/requests",
                   {"organization": f"Contract Co {n}", "provider": "generic"})
        submit(public, link["url"], n)
        links.append(link["id"])
    # One link sent by email (to the test's mail sink) and delivered, so the
    # resend operation can succeed; it is only re-sent once its email left the queue.
    emailed = api(internal, token, "POST", "/api/v1/requests",
                  {"organization": "Contract Co emailed", "provider": "generic",
                   "send_to": "it@example.com"})["id"]
    deadline = time.monotonic() + 30
    while True:
        items = api(internal, token, "GET", "/api/v1/requests")["items"]
        if any(i["id"] == emailed and i.get("email") == "sent" for i in items):
            break
        if time.monotonic() > deadline:
            raise SystemExit("seeding: the emailed link's email was not sent within 30 s")
        time.sleep(0.2)
    # One link left pending, for revocation.
    links.append(api(internal, token, "POST", "/api/v1/requests",
                     {"organization": "Contract Co pending", "provider": "lever"})["id"])
    secrets = [s["id"] for s in api(internal, token, "GET", "/api/v1/secrets")["items"]]
    if len(secrets) != SECRETS:
        raise SystemExit(f"seeding: expected {SECRETS} secrets, the API lists {len(secrets)}")
    ids = secrets + links
    print("[dictionaries.ids]")
    print("values = " + json.dumps(ids))
    print("[dictionaries.emailed]")
    print("values = " + json.dumps([emailed]))
    print("[parameters]")
    for key in ("path.id", "query.secret_id", "query.request_id"):
        print(f'"{key}" = {{ dictionary = "ids", probability = 0.5 }}')
    # The emailed link is offered to resend only: elsewhere (DELETE) it would
    # be revoked early in the run, and resend could then never succeed.
    print("[[operations]]")
    print('include-name = "POST /api/v1/requests/{id}/resend"')
    print('parameters = { "path.id" = { dictionary = "emailed", probability = 0.5 } }')


if __name__ == "__main__":
    main()
