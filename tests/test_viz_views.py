"""The light circuitsvis views (course_utils.viz): the bundle travels once per session, every view
in Colab, bad input is refused clearly; in Chromium, a view drawn without the bundle says so."""

import sys
import types

import pytest
import torch

from course_utils import viz

TOKENS = ["a", "b", "c", "d"]


@pytest.fixture(autouse=True)
def _fresh_session(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    viz.reset_views()
    yield
    viz.reset_views()


def test_the_bundle_travels_with_the_first_view_only():
    first = viz.attention_heads(torch.rand(2, 4, 4), TOKENS)._repr_html_()
    second = viz.colored_tokens(TOKENS, torch.rand(4))._repr_html_()
    assert "DecompressionStream" in first and len(first) > 300_000
    assert "DecompressionStream" not in second and len(second) < 5_000
    # Gzipped, it is well under circuitsvis's 1.3 MB per view.
    assert len(first) < 0.45 * 1_295_474 * 1.3
    viz.reset_views()
    assert "DecompressionStream" in viz.colored_tokens(TOKENS, torch.rand(4))._repr_html_()


def test_in_colab_every_view_carries_the_bundle(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    views = [viz.colored_tokens(TOKENS, torch.rand(4))._repr_html_() for _ in range(2)]
    assert all("DecompressionStream" in v for v in views)


def test_views_carry_their_data_and_names_the_element():
    html = viz.attention_heads(torch.eye(4).expand(2, 4, 4), TOKENS, head_names=["x", "y"], max_value=1)._repr_html_()
    assert '"attentionHeadNames": ["x", "y"]' in html and '"maxValue": 1' in html
    assert "cv.AttentionHeads" in html and 'class="course-circuitsvis"' in html


def test_a_token_cannot_close_the_script():
    html = viz.colored_tokens(["</script><b>", "b"], torch.rand(2))._repr_html_()
    assert "</script><b>" not in html


@pytest.mark.parametrize("call,message", [
    (lambda: viz.attention_heads(torch.rand(4, 4), TOKENS), r"attention must be \[head, query_pos, key_pos\]"),
    (lambda: viz.attention_heads(torch.rand(2, 4, 5), TOKENS), r"got shape \(2, 4, 5\)"),
    (lambda: viz.attention_heads(torch.rand(2, 4, 4), TOKENS, head_names=["x"]), "head_names must name each of the 2"),
    (lambda: viz.colored_tokens(TOKENS, torch.rand(5)), r"values must hold one number per token, shape \(4,\)"),
    (lambda: viz.colored_tokens([TOKENS], torch.rand(4)), "tokens must be one sequence"),
    (lambda: viz.colored_tokens(TOKENS, torch.rand(4), colour="red"), r"unknown circuitsvis option\(s\) \['colour'\]"),
])
def test_bad_input_is_refused_clearly(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.browser
def test_in_chromium_views_draw_and_a_view_without_the_bundle_says_so(tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tools"))
    import browser_check

    if browser_check.find_chromium() is None:
        pytest.fail("headless Chromium is missing: run `make chromium` (installs Debian's `chromium`)")
    good = viz.attention_heads(torch.rand(2, 4, 4).softmax(-1), TOKENS)._repr_html_() + \
        viz.colored_tokens(TOKENS, torch.rand(4))._repr_html_()
    (tmp_path / "good.html").write_text(f"<html><body>{good}</body></html>")
    report = browser_check.check_page(tmp_path / "good.html")
    assert len(report.views) == 2 and not report.empty_views and not report.errors
    orphan = viz.colored_tokens(TOKENS, torch.rand(4))._repr_html_()  # the bundle went with the views above
    (tmp_path / "orphan.html").write_text(f"<html><body>{orphan}</body></html>")
    report = browser_check.check_page(tmp_path / "orphan.html", timeout=10)
    assert len(report.empty_views) == 1 and "viz.reset_views()" in report.views[0]["text"]
    assert any("viz.reset_views()" in e for e in report.errors)


def test_without_chromium_the_browser_check_says_how_to_install_it(monkeypatch):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tools"))
    import browser_check

    monkeypatch.setattr(browser_check, "find_chromium", lambda: None)
    with pytest.raises(browser_check.ChromiumMissing, match="make chromium"):
        browser_check.Chromium()
