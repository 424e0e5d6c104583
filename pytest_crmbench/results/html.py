"""``crmbench report`` / ``compare -o``: one self-contained HTML file, readable offline.

Everything is inline: CSS, a small script, SVG charts drawn by :mod:`.charts`. The items
travel in their packed form (:mod:`.packing`) and are unpacked in the browser only
when one is opened, so a 1,500-item run stays a few MB and opens in a moment.
Nothing is fetched: no fonts, no scripts, no images from anywhere.
"""

from __future__ import annotations

import json
from collections import defaultdict
from html import escape
from typing import Any

from pytest_crmbench.results.charts import Bar, bar_chart, line_chart
from pytest_crmbench.results.packing import PACKING_KEY, TURN_DEFAULTS, report_items
from pytest_crmbench.results.summary import is_agent_item

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header{background:#1d2a3a;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
header .sub{opacity:.8;font-size:13px}main{padding:16px 24px;max-width:1400px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:10px 14px;min-width:150px}
.card .big{font-size:26px;font-weight:600}.card .small{font-size:12px;color:#5b6675}
.oracle{background:#fff4d6;border-color:#e5b700}
section{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:12px 16px;margin:14px 0}
h2{font-size:16px;margin:0 0 8px}.charts{display:flex;flex-wrap:wrap;gap:18px}
svg.chart .ct{font-weight:600;font-size:13px}svg.chart .cl,svg.chart .cv{font-size:11px;fill:#333}
svg.chart .bg{fill:#eef1f4}svg.chart .bar{fill:#3f7fd8}
svg.chart .ci{stroke:#111;stroke-width:1.2;fill:none}
svg.chart .grid{stroke:#dde2e8}svg.chart .line{stroke:#3f7fd8;stroke-width:2;fill:none}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eef1f4;vertical-align:top}th{background:#f0f2f5;position:sticky;top:0}
tr.row{cursor:pointer}tr.row:hover{background:#f3f7ff}
.passed{color:#17803d;font-weight:600}.failed{color:#c0262d;font-weight:600}
.error{color:#a15c00;font-weight:600}.skipped{color:#777}
.filters{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:8px}
.filters select,.filters input{padding:4px 6px;border:1px solid #c9d0d8;border-radius:4px}
#drill{position:fixed;top:0;right:0;width:min(760px,100%);height:100%;overflow:auto;background:#fff;
border-left:2px solid #1d2a3a;box-shadow:-4px 0 16px rgba(0,0,0,.15);padding:14px 18px;
box-sizing:border-box;display:none}#drill.open{display:block}
.turn{border:1px solid #dde2e8;border-radius:6px;margin:10px 0;padding:8px 10px}
.turn.ok{border-left:4px solid #17803d}.turn.bad{border-left:4px solid #c0262d}
.msg{white-space:pre-wrap;margin:4px 0}.who{font-weight:600;font-size:12px;color:#5b6675}
.call{background:#f6f8fa;border-radius:4px;padding:4px 6px;margin:4px 0;
font:12px ui-monospace,monospace}
details pre{white-space:pre-wrap;word-break:break-all;font-size:11px;max-height:280px;overflow:auto}
.reasons{color:#c0262d}.kv td:first-child{color:#5b6675;width:180px}.muted{color:#777}
button.close{float:right}
"""

SCRIPT = r"""
(function(){
"use strict";
var DATA = JSON.parse(document.getElementById('crm-data').textContent);
var P = DATA.packing, SHAPES = P ? P.shapes : [], SHARED = P ? P.shared : [], DONE = {};
var DEFAULTS = DATA.turn_defaults;
function un(v){
  if (Array.isArray(v)) {
    if (v.length >= 2 && v[0] === '\u0000') {
      if (v[1] === -1) return v.slice(2).map(un);
      var keys = SHAPES[v[1]], o = {};
      for (var i = 0; i < keys.length; i++) o[keys[i]] = un(v[i + 2]);
      return o;
    }
    return v.map(un);
  }
  if (v && typeof v === 'object') {
    var ks = Object.keys(v);
    if (ks.length === 1 && ks[0] === '$') {
      if (!(v.$ in DONE)) DONE[v.$] = un(SHARED[v.$]);
      return DONE[v.$];
    }
    if (ks.length === 1 && ks[0] === '$$') v = v.$$;
    var out = {};
    Object.keys(v).forEach(function(k){ out[k] = un(v[k]); });
    return out;
  }
  return v;
}
function fullItem(i){
  var it = un(DATA.items[i]);
  if (!P) return it;
  it.turns = (it.turns || []).map(function(t){
    var o = {}; Object.keys(DEFAULTS).forEach(function(k){ o[k] = DEFAULTS[k]; });
    Object.keys(t).forEach(function(k){ o[k] = t[k]; });
    if (!('expected_calls' in o)) o.expected_calls = (o.calls || []).map(function(c){
      return {tool: c.tool, args: c.args}; });
    return o;
  });
  return it;
}
function esc(s){ return String(s == null ? '' : s).replace(/[&<>"]/g, function(c){
  return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]; }); }
function j(v){ return esc(JSON.stringify(v, null, 1)); }
var rows = document.getElementById('rows');
var fStatus = document.getElementById('f-status'), fWf = document.getElementById('f-workflow'),
    fCx = document.getElementById('f-complexity'), fText = document.getElementById('f-text'),
    count = document.getElementById('count');
function render(){
  var st = fStatus.value, wf = fWf.value, cx = fCx.value, q = fText.value.toLowerCase();
  var html = [], n = 0;
  DATA.items.forEach(function(it, i){
    if (st && it.outcome !== st) return;
    if (wf && it.workflow !== wf) return;
    if (cx && it.complexity !== cx) return;
    var reason = it.first_failure ? it.first_failure.reason : (it.error || '');
    if (q && (it.case_id + ' ' + (it.test_id || '') + ' ' + (reason || '') + ' ' +
        (it.family || '')).toLowerCase().indexOf(q) < 0) return;
    n++;
    html.push('<tr class="row" data-i="' + i + '"><td>' + esc(it.case_id) +
      (it.trial > 1 ? ' #' + it.trial : '') + '</td><td class="' + esc(it.outcome) + '">' +
      esc(it.outcome) + '</td><td>' + esc(it.family) + '</td><td>' + esc(it.workflow) +
      '</td><td>' + esc(it.complexity) + '</td><td>' +
      (it.n_turns != null ? esc(it.turns_passed) + '/' + esc(it.n_turns) : '') +
      '</td><td>' + esc(reason) + '</td></tr>');
  });
  rows.innerHTML = html.join('');
  count.textContent = n + ' of ' + DATA.items.length + ' items';
}
[fStatus, fWf, fCx].forEach(function(el){ el.addEventListener('change', render); });
fText.addEventListener('input', render);
var drill = document.getElementById('drill');
function open(i){
  var it = fullItem(i), h = [];
  h.push('<button class="close" id="drill-close">close</button><h2 id="drill-title">' +
    esc(it.case_id) + ' <span class="' + esc(it.outcome) + '">' + esc(it.outcome) + '</span></h2>');
  h.push('<div class="muted">' + esc(it.test_id || '') + ' · ' + esc(it.family) + ' · ' +
    esc(it.workflow) + ' · ' + esc(it.complexity) + ' · trial ' + esc(it.trial) + '</div>');
  if (it.error) h.push('<p class="reasons">' + esc(it.error) + '</p>');
  if (it.problems && it.problems.length) h.push('<p class="reasons">' +
    it.problems.map(esc).join('<br>') + '</p>');
  if (it.result !== undefined && !(it.turns || []).length)
    h.push('<details><summary>CRM result</summary><pre>' + j(it.result) + '</pre></details>');
  (it.turns || []).forEach(function(t){
    h.push('<div class="turn ' + (t.passed ? 'ok' : 'bad') + '"><div><b>Turn ' + esc(t.turn) +
      '</b> · ' + esc(t.kind) + ' · <span class="' +
      (t.passed ? 'passed">passed' : 'failed">failed') + '</span></div>');
    h.push('<div class="who">user</div><div class="msg">' + esc(t.user) + '</div>');
    (t.calls || []).forEach(function(c){
      h.push('<div class="call">→ ' + esc(c.tool) + '(' + esc(JSON.stringify(c.args)) + ') ' +
        (c.ok ? '<span class="passed">ok</span>' : '<span class="failed">error: ' + esc(c.error) +
        '</span>') + '<details><summary>result</summary><pre>' + j(c.result) +
        '</pre></details></div>');
    });
    h.push('<div class="who">agent</div><div class="msg">' + esc(t.reply) + '</div>');
    if (t.reasons && t.reasons.length) h.push('<div class="reasons">' +
      t.reasons.map(esc).join('<br>') + '</div>');
    var diff = t.checks && t.checks.state ? t.checks.state.diff : null;
    h.push('<details' + (t.passed ? '' : ' open') + '><summary>verdict: checks and state diff' +
      '</summary><pre>' + j(t.checks) + '</pre></details>');
    h.push('<details><summary>expected calls</summary><pre>' + j(t.expected_calls) +
      '</pre></details>');
    if (diff && diff.length)
      h.push('<div class="muted">state diff: ' + diff.length + ' entries</div>');
    h.push('</div>');
  });
  drill.innerHTML = h.join('');
  drill.classList.add('open');
  document.getElementById('drill-close').addEventListener('click', function(){
    drill.classList.remove('open'); });
}
rows.addEventListener('click', function(e){
  var tr = e.target.closest('tr.row');
  if (tr) open(+tr.getAttribute('data-i'));
});
render();
// Test hook: #case=ID opens that item; #click-first clicks the first row as a user would.
var hash = decodeURIComponent(location.hash.slice(1));
if (hash.indexOf('case=') === 0) {
  var want = hash.slice(5);
  DATA.items.forEach(function(it, i){ if (it.case_id === want) open(i); });
} else if (hash === 'click-first' && rows.querySelector('tr.row')) {
  rows.querySelector('tr.row td').click();
}
document.body.setAttribute('data-ready', 'yes');
})();
"""

ERROR_HOOK = (
    "<script>window.addEventListener('error',function(e){"
    "document.documentElement.setAttribute('data-js-error',String(e.message));});</script>"
)


def _pct(rate: float | None, ci: list[float] | None = None) -> str:
    if rate is None:
        return "n/a"
    return f"{rate * 100:.1f}%" + (f" [{ci[0] * 100:.1f}–{ci[1] * 100:.1f}]" if ci else "")


def _group_bars(groups: dict[str, dict[str, Any]]) -> list[Bar]:
    return [
        Bar(
            name,
            g.get("pass_rate"),
            g.get("pass_rate_ci"),
            f"({g['passed']}/{g['passed'] + g['failed']})",
        )
        for name, g in groups.items()
    ]


def _page(title: str, subtitle: str, body: str, script: str = "") -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{CSS}</style>{ERROR_HOOK}</head><body>"
        f"<header><h1>{escape(title)}</h1><div class=sub>{escape(subtitle)}</div></header>"
        f"<main>{body}</main>{script}</body></html>"
    )


def _cards(cards: list[tuple[str, str, str]], oracle: bool = False) -> str:
    out = ['<div class="cards">']
    for label, big, small in cards:
        cls = "card oracle" if oracle and label == "pass rate" else "card"
        out.append(
            f'<div class="{cls}"><div class="small">{escape(label)}</div>'
            f'<div class="big">{escape(big)}</div><div class="small">{escape(small)}</div></div>'
        )
    out.append("</div>")
    return "".join(out)


def _kv(rows: list[tuple[str, Any]]) -> str:
    return (
        '<table class="kv">'
        + "".join(
            f"<tr><td>{escape(k)}</td><td>{escape(v if isinstance(v, str) else json.dumps(v))}"
            "</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )


def _learning_points(curve: Any) -> list[tuple[float, float]]:
    """(x, rate) points from ``summary.learning_curve``: a list of rates, or of dicts
    with a rate (``pass_rate`` or another ``*rate`` key) and an optional x."""
    rows = curve.get("points", curve.get("windows", [])) if isinstance(curve, dict) else curve
    points: list[tuple[float, float]] = []
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        if isinstance(row, int | float):
            points.append((i + 1, float(row)))
        elif isinstance(row, dict):
            rate = row.get("pass_rate")
            if rate is None:
                rate = next((v for k, v in row.items() if k.endswith("rate")), None)
            x = next((row[k] for k in ("items", "end", "index", "window", "n") if k in row), i + 1)
            if isinstance(rate, int | float) and isinstance(x, int | float):
                points.append((float(x), float(rate)))
    return points


def _usage_bars(items: list[Any]) -> tuple[str, list[Bar]]:
    """Cost (or, without prices, tokens) per passed conversation, by complexity."""
    cost: dict[str, float] = defaultdict(float)
    tokens: dict[str, float] = defaultdict(float)
    passed: dict[str, int] = defaultdict(int)
    for r in items:
        if not is_agent_item(r):
            continue
        usage = r.get("usage") or {}
        cx = str(r.get("complexity"))
        cost[cx] += float(usage.get("cost_usd") or 0)
        tokens[cx] += float(usage.get("input_tokens") or 0) + float(usage.get("output_tokens") or 0)
        passed[cx] += r.get("outcome") == "passed"
    use_cost = any(cost.values())
    source = cost if use_cost else tokens
    title = "cost (USD) per passed item" if use_cost else "tokens per passed item"
    bars = [
        Bar(cx, (source[cx] / passed[cx]) if passed[cx] else None, None, f"({passed[cx]} passed)")
        for cx in sorted(passed)
    ]
    return title, bars


def render_report(report: dict[str, Any]) -> str:
    """The HTML page of one run's JSON report."""
    crm = report.get("crmbench") or {}
    s = crm.get("summary") or {}
    items = report_items(report)
    agent = crm.get("agent") or {}
    agent_name = str(agent.get("name")) + (f" · {agent['model']}" if agent.get("model") else "")
    env = s.get("environment") or {}
    hat = s.get("pass_hat_k")
    cards = [
        (
            "pass rate",
            _pct(s.get("pass_rate")),
            f"95 % CI {_pct(None if not s.get('pass_rate_ci') else s['pass_rate_ci'][0])}–"
            f"{_pct(None if not s.get('pass_rate_ci') else s['pass_rate_ci'][1])} (Wilson)"
            f" · {s.get('passed', 0)}/{s.get('passed', 0) + s.get('failed', 0)}",
        ),
        ("turn pass rate", _pct(s.get("turn_pass_rate")), f"{s.get('turns', 0)} turns"),
        ("errors (not scored)", str(s.get("errors", 0)), f"error rate {_pct(s.get('error_rate'))}"),
        (
            "environment checks",
            f"{env.get('passed', 0)}/{env.get('items', 0)}",
            "golden sandbox, no agent (apart)",
        ),
        (
            "cost",
            f"${s.get('cost_usd', 0):.4f}",
            f"{s.get('input_tokens', 0):,} in / {s.get('output_tokens', 0):,} out tokens",
        ),
    ]
    if hat:
        cards.append(
            (
                f"pass^{hat['k']}",
                _pct(hat.get("pass_hat_k")),
                f"pass@1 {_pct(hat.get('pass_at_1'))}",
            )
        )
    kinds = s.get("turn_pass_rate_by_kind") or {}
    kind_ci = s.get("turn_pass_rate_by_kind_ci") or {}
    counts = s.get("turns_by_kind") or {}
    charts = [
        bar_chart("pass rate by complexity", _group_bars(s.get("by_complexity") or {})),
        bar_chart("pass rate by workflow", _group_bars(s.get("by_workflow") or {})),
        bar_chart(
            "turn pass rate by kind",
            [Bar(k, v, kind_ci.get(k), f"({counts.get(k, 0)})") for k, v in kinds.items()],
        ),
        bar_chart(
            "failure taxonomy (first failing turn)",
            [Bar(r["reason"], r["count"]) for r in s.get("top_failure_reasons") or []]
            or [Bar("no failures", 0)],
            percent=False,
        ),
    ]
    title, bars = _usage_bars(items)
    charts.append(bar_chart(title, bars, percent=False))
    tools = sorted(
        (s.get("by_tool") or {}).items(), key=lambda kv: (kv[1]["pass_rate"] or 0, kv[0])
    )
    charts.append(bar_chart("pass rate by tool (weakest first)", _group_bars(dict(tools))))
    if s.get("learning_curve") is not None:
        charts.append(line_chart("learning curve", _learning_points(s["learning_curve"])))
    errors = [r for r in items if r.get("outcome") == "error"]
    error_html = (
        "<p class=muted>No item errored.</p>"
        if not errors
        else "<table><tr><th>case</th><th>error</th></tr>"
        + "".join(
            f"<tr><td>{escape(r['case_id'])}</td><td>{escape(str(r.get('error')))}</td></tr>"
            for r in errors[:200]
        )
        + "</table>"
    )
    settings = crm.get("settings") or {}
    dataset = crm.get("dataset") or {}
    run_rows: list[tuple[str, Any]] = [
        ("agent", agent_name),
        ("provider / host", f"{agent.get('provider') or '-'} / {agent.get('host') or '-'}"),
        ("label", crm.get("label") or "-"),
        ("dataset", ", ".join(dataset.get("files") or []) or "-"),
        ("dataset sha256", dataset.get("sha256") or "-"),
        ("backend", f"{crm.get('backend')} {crm.get('postgres_provider') or ''}".strip()),
        ("started / finished", f"{crm.get('started')} / {crm.get('finished')}"),
        ("run id", crm.get("run_id") or "-"),
        ("shard", crm.get("shard") or ("merged" if crm.get("merged_from") else "-")),
        ("stopped", crm.get("stopped") or "-"),
        ("feedback", crm.get("feedback") or "off"),
        ("gate", crm.get("gate") or "-"),
    ]
    run_rows += [
        (f"setting {k}", v)
        for k, v in settings.items()
        if v not in (None, False) and k not in ("agent", "dataset")
    ]
    workflows = sorted({str(r.get("workflow")) for r in items if r.get("workflow")})
    complexities = sorted({str(r.get("complexity")) for r in items if r.get("complexity")})
    options = "".join(f"<option>{escape(w)}</option>" for w in workflows)
    cx_options = "".join(f"<option>{escape(c)}</option>" for c in complexities)
    oracle = bool(crm.get("oracle"))
    body = (
        (
            '<section class="card oracle"><b>ORACLE RUN</b>: reference data reached the agent; '
            "no gate passes it.</section>"
            if oracle
            else ""
        )
        + _cards(cards, oracle)
        + '<section><h2>Charts</h2><p class="muted">Bars are pass rates over judged agent items; '
        "whiskers are 95 % Wilson score intervals.</p>"
        f'<div class="charts" id="charts">{"".join(charts)}</div></section>'
        f"<section><h2>Errors (not scored: {len(errors)})</h2>{error_html}</section>"
        f"<section><h2>Run</h2>{_kv(run_rows)}</section>"
        '<section><h2>Items</h2><div class="filters">'
        '<select id="f-status"><option value="">every status</option><option>passed</option>'
        "<option>failed</option><option>error</option><option>skipped</option></select>"
        f'<select id="f-workflow"><option value="">every workflow</option>{options}</select>'
        f'<select id="f-complexity"><option value="">every complexity</option>{cx_options}'
        '</select><input id="f-text" type="search" placeholder="case id, reason…">'
        '<span id="count" class="muted"></span></div>'
        '<table id="items"><thead><tr><th>case</th><th>status</th><th>family</th>'
        "<th>workflow</th><th>complexity</th><th>turns</th><th>first failure / error</th>"
        '</tr></thead><tbody id="rows"></tbody></table></section><div id="drill"></div>'
    )
    data = {
        "items": [test["metadata"]["crmbench"] for test in _tests_with_items(report)],
        "packing": crm.get(PACKING_KEY),
        "turn_defaults": TURN_DEFAULTS,
    }
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    blob = blob.replace("</", "<\\/").replace("<!--", "<\\!--")
    script = (
        f'<script type="application/json" id="crm-data">{blob}</script><script>{SCRIPT}</script>'
    )
    subtitle = f"{agent_name} · {s.get('items', 0)} agent items · {crm.get('started', '')}" + (
        f" · {crm['label']}" if crm.get("label") else ""
    )
    return _page("crmbench report", subtitle, body, script)


def _tests_with_items(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t
        for t in report.get("tests") or []
        if isinstance(t, dict) and isinstance((t.get("metadata") or {}).get("crmbench"), dict)
    ]


def render_compare(result: dict[str, Any]) -> str:
    """The HTML page of a :func:`~pytest_crmbench.results.compare.compare_reports` result."""
    r = result
    cards = [
        ("A pass rate", _pct(r["pass_rate_a"]), _pct(r["pass_rate_a"], r["pass_rate_a_ci"])),
        ("B pass rate", _pct(r["pass_rate_b"]), _pct(r["pass_rate_b"], r["pass_rate_b_ci"])),
        ("regressions", str(len(r["regressions"])), "passed in A, fail in B"),
        ("fixes", str(len(r["fixes"])), "failed in A, pass in B"),
        ("both pass / both fail", f"{r['both_pass']} / {r['both_fail']}", ""),
        ("verdict", r["verdict"], "exact McNemar test on shared cases"),
    ]

    def group_table(rows: list[dict[str, Any]]) -> str:
        return (
            "<table><tr><th>group</th><th>A</th><th>B</th><th>Δ</th></tr>"
            + "".join(
                f"<tr><td>{escape(g['name'])}</td><td>{_pct(g['a'], g['a_ci'])}</td>"
                f"<td>{_pct(g['b'], g['b_ci'])}</td><td>"
                + ("" if g["delta"] is None else f"{g['delta'] * 100:+.1f} pts")
                + "</td></tr>"
                for g in rows
            )
            + "</table>"
        )

    def cases(title: str, ids: list[str]) -> str:
        shown = ", ".join(escape(c) for c in ids[:500]) or "none"
        return f"<section><h2>{escape(title)} ({len(ids)})</h2><p>{shown}</p></section>"

    chart = bar_chart(
        f"pass rate on {r['shared_cases']} shared cases ({r['measure']})",
        [
            Bar("A: " + r["a"], r["pass_rate_a"], r["pass_rate_a_ci"]),
            Bar("B: " + r["b"], r["pass_rate_b"], r["pass_rate_b_ci"]),
        ],
    )
    body = (
        _cards(cards)
        + f'<section><div class="charts">{chart}</div></section>'
        + cases("Regressions", r["regressions"])
        + cases("Fixes", r["fixes"])
        + f"<section><h2>By complexity</h2>{group_table(r['by_complexity'])}</section>"
        + f"<section><h2>By workflow</h2>{group_table(r['by_workflow'])}</section>"
        + "<section><h2>Cost</h2>"
        + _kv(
            [
                ("A", r["cost_a"]),
                ("B", r["cost_b"]),
                ("Δ cost (USD)", f"{r['cost_delta_usd']:+.4f}"),
            ]
        )
        + "</section>"
    )
    return _page("crmbench compare", f"A: {r['a']}  vs  B: {r['b']}", body)
