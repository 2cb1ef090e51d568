"""The gallery page's inline style and script (kept apart from the markup that uses them).

Light and dark follow the system preference; the grid goes from one column on a phone to
as many as fit on a laptop. The script only adds keyboard navigation between scenes: the
page works without it.
"""

from __future__ import annotations

STYLE = """
:root { color-scheme: light dark; --bg: #fafaf7; --fg: #1d1d1f; --muted: #5f6368;
  --card: #ffffff; --line: #d9d9d4; --accent: #2255cc; --bad: #b3261e; --wait: #8a6d00; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #121212; --fg: #e8e8e6; --muted: #a0a4a8; --card: #1e1e1e; --line: #3a3a3a;
    --accent: #8ab4f8; --bad: #f28b82; --wait: #e6c35c; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main, footer { max-width: 1280px; margin: 0 auto; padding: 0 16px; }
h1 { margin: 16px 0 4px; font-size: 1.6rem; } h1 small { color: var(--muted); font-weight: 400;
  font-size: 1rem; }
h2 { font-size: 1.25rem; margin: 0 0 6px; } h3 { font-size: 0.95rem; color: var(--muted);
  margin: 8px 0; font-weight: 600; }
a { color: var(--accent); }
.character h2 { margin-top: 8px; } .character p { margin: 0 0 8px; color: var(--muted); }
.strip { display: flex; gap: 6px; overflow-x: auto; list-style: none; padding: 0; margin: 0; }
.strip img { height: 72px; width: auto; border-radius: 6px; display: block; }
.facts { margin: 6px 0; color: var(--muted); }
nav summary { cursor: pointer; color: var(--muted); }
nav ol { display: flex; flex-wrap: wrap; gap: 6px 14px; padding: 0; list-style: none; }
.scene { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 14px; margin: 14px 0; scroll-margin-top: 8px; }
.scene:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
.prompt { margin: 0 0 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
.badge { font-size: 0.75rem; font-weight: 500; border: 1px solid var(--line);
  border-radius: 999px; padding: 1px 8px; color: var(--muted); vertical-align: middle; }
.badge.failed { color: var(--bad); border-color: var(--bad); }
.badge.pending { color: var(--wait); border-color: var(--wait); }
.settings { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0 0 8px; font-size: 0.9rem; }
.settings dt { display: inline; color: var(--muted); } .settings dt::after { content: ": "; }
.settings dd { display: inline; margin: 0; }
.error { border-left: 4px solid var(--bad); padding: 4px 10px; margin: 8px 0;
  overflow-wrap: anywhere; }
.error p { margin: 4px 0; } code { font-size: 0.9em; }
.about { display: flex; gap: 12px; justify-content: space-between; align-items: flex-start; }
.about > div:first-child { flex: 1 1 auto; min-width: 0; }
.inputs { display: flex; gap: 10px; flex-wrap: wrap; flex: 0 0 auto; }
.inputs img { height: 96px; width: auto; border-radius: 6px; display: block; }
.inputs figcaption, figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 4px;
  overflow-wrap: anywhere; }
figure { margin: 0; }
.versions.side { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; }
.image img { width: 100%; height: auto; border-radius: 6px; display: block;
  background: var(--line); }
.earlier .image img { opacity: 0.92; }
.placeholder { aspect-ratio: 1 / 1; display: grid; place-items: center; border-radius: 6px;
  border: 2px dashed var(--line); color: var(--muted); }
[data-state="failed"] > .placeholder { color: var(--bad); border-color: var(--bad); }
.was { font-style: italic; }
.nothumb { display: block; padding: 20px 8px; border: 1px dashed var(--line); }
kbd { border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; }
footer { color: var(--muted); font-size: 0.9rem; padding-bottom: 24px; }
@media (max-width: 700px) {
  .versions.side { grid-template-columns: 1fr; } .about { flex-wrap: wrap; }
  .grid { grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); }
  header, main, footer { padding: 0 10px; } }
"""

# j / k (and n / p) move the focus to the next / previous scene; typing in a field or with a
# modifier held is left alone.
SCRIPT = """
(function () {
  var scenes = Array.prototype.slice.call(document.querySelectorAll("section[data-scene]"));
  function current() {
    var i = scenes.indexOf(document.activeElement);
    if (i >= 0) return i;
    for (i = 0; i < scenes.length; i++) {
      if (scenes[i].getBoundingClientRect().bottom > 40) return i - 0.5;
    }
    return scenes.length - 0.5;
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || !scenes.length) return;
    var step = {j: 1, n: 1, k: -1, p: -1}[event.key];
    if (!step) return;
    var at = current();
    var target = Number.isInteger(at) ? at + step : Math.round(at + step / 2);
    target = Math.max(0, Math.min(scenes.length - 1, target));
    scenes[target].focus();
    scenes[target].scrollIntoView({block: "start"});
    event.preventDefault();
  });
})();
"""
