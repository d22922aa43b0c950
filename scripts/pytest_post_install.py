"""pytest plugin for make test: pytest-odoo runs the unit and integration tests; the tests
tagged post_install (browser tours, HttpCase) need Odoo's HTTP server and run afterwards
through Odoo's own test runner. Kept outside the addon so loading it imports no Odoo code."""


def pytest_collection_modifyitems(config, items):
    browser_tests = [
        item
        for item in items
        if "post_install" in getattr(getattr(item, "cls", None), "test_tags", ())
    ]
    if browser_tests:
        config.hook.pytest_deselected(items=browser_tests)
        items[:] = [item for item in items if item not in browser_tests]
