// Tandem operators' dashboard. Fetches /api/dashboard with the operator key and draws the
// figures; charts are inline SVG drawn here. No external requests, no inline code (the page is
// served with a strict Content-Security-Policy).
(function () {
  'use strict';

  var STORE = 'tandem.operatorKey';
  var REFRESH_MS = 15000;
  var SVG = 'http://www.w3.org/2000/svg';
  var timer = null;

  // The one place the "<5" rule lives: a count of people from 1 to 4 is shown as "<5",
  // so that no individual stands out; 0 and 5 or more are shown as they are.
  function people(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    return n >= 1 && n <= 4 ? '<5' : String(n);
  }

  function plain(n) {
    return typeof n === 'number' && isFinite(n) ? String(n) : '–';
  }

  function percent(share) {
    return typeof share === 'number' ? Math.round(share * 100) + '%' : '–';
  }

  // One decimal below 10 units when it matters: 4.4 s, 2 s, 12 s.
  function short(x) {
    return x < 10 && Math.round(x * 10) % 10 !== 0 ? x.toFixed(1) : String(Math.round(x));
  }

  function duration(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '–';
    if (ms < 1000) return Math.round(ms) + ' ms';
    var s = ms / 1000;
    if (s < 60) return short(s) + ' s';
    var m = s / 60;
    if (m < 60) return Math.round(m) + ' min';
    var h = m / 60;
    if (h < 48) return short(h) + ' h';
    return short(h / 24) + ' d';
  }

  function clock(ms) {
    var t = new Date(ms);
    var pad = function (x) { return (x < 10 ? '0' : '') + x; };
    return t.getFullYear() + '-' + pad(t.getMonth() + 1) + '-' + pad(t.getDate()) + ' ' +
      pad(t.getHours()) + ':' + pad(t.getMinutes());
  }

  function clockSeconds(ms) {
    return clock(ms).slice(11) + ':' + ('0' + new Date(ms).getSeconds()).slice(-2);
  }

  // Returns a round duration (ms) at least `ms`, so that the axis reads 0, 2 s, 4 s, ….
  function niceStep(ms) {
    var steps = [1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5,
      6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 12096e5, 2592e6];
    for (var i = 0; i < steps.length; i++) if (steps[i] >= ms) return steps[i];
    return Math.ceil(ms / 2592e6) * 2592e6;
  }

  function humanReason(code) {
    if (code === 'awaiting_round') return 'not yet in a matching round';
    return code.replace(/_/g, ' ');
  }

  function $(id) { return document.getElementById(id); }

  function setMetric(name, text, raw) {
    var nodes = document.querySelectorAll('[data-metric="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = text;
      if (raw !== undefined && raw !== null) nodes[i].setAttribute('data-raw', String(raw));
    }
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function cell(text, cls, metric) {
    var attrs = {};
    if (cls) attrs['class'] = cls;
    if (metric) attrs['data-metric'] = metric;
    return el('td', attrs, text);
  }

  function emptyRow(body, cols, text) {
    var tr = el('tr');
    var td = el('td', { colspan: String(cols), 'class': 'empty' }, text);
    tr.appendChild(td);
    body.appendChild(tr);
  }

  // ---- key handling -------------------------------------------------------------------------

  function keyFromFragment() {
    var hash = window.location.hash.replace(/^#/, '');
    var parts = hash.split('&');
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf('key=') === 0) {
        var key = decodeURIComponent(parts[i].slice(4));
        // The key must not linger in the address bar, the history or a screenshot.
        window.history.replaceState(null, '', window.location.pathname + window.location.search);
        return key;
      }
    }
    return null;
  }

  function storedKey() {
    try { return window.sessionStorage.getItem(STORE); } catch (e) { return null; }
  }

  function storeKey(key) {
    try {
      if (key) window.sessionStorage.setItem(STORE, key);
      else window.sessionStorage.removeItem(STORE);
    } catch (e) { /* storage refused: the key lives until the tab reloads */ }
  }

  var currentKey = null;

  function showLogin(message) {
    $('board').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    var err = $('login-error');
    err.hidden = !message;
    err.textContent = message || '';
    if (timer) { clearInterval(timer); timer = null; }
  }

  function showProblem(message) {
    var p = $('problem');
    p.hidden = !message;
    p.textContent = message || '';
  }

  // ---- rendering ----------------------------------------------------------------------------

  function renderKpis(d) {
    setMetric('mentees.waiting', people(d.mentees.waiting));
    setMetric('mentees.proposed', people(d.mentees.proposed));
    setMetric('mentees.in_tandem', people(d.mentees.in_tandem));
    setMetric('tandems.total', people(d.tandems.total));
    setMetric('tandems.cross_node', people(d.tandems.cross_node));
    setMetric('tandems.cross_node_share', percent(d.tandems.cross_node_share), d.tandems.cross_node_share);
    setMetric('tandems.active', people(d.tandems.active));
    setMetric('tandems.starting', people(d.tandems.starting));
    setMetric('tandems.overdue', people(d.tandems.overdue));
    setMetric('tandems.completed', people(d.tandems.completed));
    setMetric('tandems.ended_early', people(d.tandems.ended_early));
    setMetric('tandems.goal_attainment',
      d.tandems.goal_attainment_percent === null ? '–' : d.tandems.goal_attainment_percent + '%',
      d.tandems.goal_attainment_percent);
    setMetric('time_to_match.median', duration(d.time_to_match.median_ms), d.time_to_match.median_ms);
    setMetric('time_to_match.p90', duration(d.time_to_match.p90_ms), d.time_to_match.p90_ms);
    setMetric('profile_staleness', duration(d.profile_staleness_secs * 1000), d.profile_staleness_secs);
    setMetric('rounds.total', plain(d.rounds.total));
  }

  function renderNodes(d) {
    var body = $('nodes');
    clear(body);
    if (!d.nodes.length) { emptyRow(body, 9, 'No node is registered yet.'); return; }
    d.nodes.forEach(function (n) {
      var tr = el('tr');
      var name = el('td');
      name.appendChild(el('strong', {}, n.display_name || n.node_id));
      name.appendChild(el('span', { 'class': 'muted small' }, ' ' + n.node_id));
      tr.appendChild(name);
      var state = n.last_error ? 'error' : (n.stale ? 'stale' : 'ok');
      var health = el('td');
      health.appendChild(el('span', { 'class': 'health ' + state, 'data-metric': 'node.' + n.node_id + '.health' },
        state === 'ok' ? 'healthy' : (state === 'stale' ? 'stale' : 'sync failed')));
      if (n.last_error) health.appendChild(el('span', { 'class': 'errtext', title: n.last_error }, n.last_error));
      tr.appendChild(health);
      tr.appendChild(cell(n.last_sync_at_ms ? clock(n.last_sync_at_ms) : 'never'));
      tr.appendChild(cell(n.sync_lag_secs === null ? '–' : duration(n.sync_lag_secs * 1000), 'num'));
      tr.appendChild(cell(plain(n.profiles), 'num', 'node.' + n.node_id + '.profiles'));
      tr.appendChild(cell(plain(n.free_capacity), 'num', 'node.' + n.node_id + '.free_capacity'));
      tr.appendChild(cell(people(n.tandems), 'num', 'node.' + n.node_id + '.tandems'));
      tr.appendChild(cell(plain(n.outbox_pending), 'num', 'node.' + n.node_id + '.outbox_pending'));
      tr.appendChild(cell(plain(n.outbox_dead_letters), n.outbox_dead_letters ? 'num alert' : 'num',
        'node.' + n.node_id + '.outbox_dead_letters'));
      body.appendChild(tr);
    });
  }

  function renderReasons(d) {
    var body = $('reasons');
    clear(body);
    if (!d.unmatched.length) { emptyRow(body, 2, 'No mentee is waiting.'); return; }
    d.unmatched.forEach(function (r) {
      var tr = el('tr');
      tr.appendChild(cell(humanReason(r.reason)));
      tr.appendChild(cell(people(r.mentees), 'num', 'unmatched.' + r.reason));
      body.appendChild(tr);
    });
  }

  function renderRounds(d) {
    var body = $('rounds');
    clear(body);
    if (!d.rounds.latest.length) { emptyRow(body, 6, 'No matching round has run yet.'); return; }
    d.rounds.latest.forEach(function (r, i) {
      var tr = el('tr');
      tr.appendChild(cell(clock(r.started_at_ms)));
      tr.appendChild(cell(people(r.mentees_considered), 'num', 'rounds.' + i + '.mentees_considered'));
      tr.appendChild(cell(plain(r.mentors_considered), 'num'));
      tr.appendChild(cell(people(r.proposals), 'num', 'rounds.' + i + '.proposals'));
      tr.appendChild(cell(plain(r.objective), 'num', 'rounds.' + i + '.objective'));
      tr.appendChild(cell(duration(r.duration_ms), 'num'));
      body.appendChild(tr);
    });
  }

  function renderOutcomes(d) {
    var o = d.funnel.outcomes;
    $('outcomes').textContent = 'Open ' + people(o.open) + ' · declined by mentor ' + people(o.declined_by_mentor) +
      ' · declined by company ' + people(o.declined_by_company) + ' · expired ' + people(o.expired) +
      ' · withdrawn ' + people(o.withdrawn);
  }

  // Horizontal bars, one per stage, scaled to the first stage.
  function drawFunnel(d) {
    var chart = $('chart-funnel');
    clear(chart);
    var stages = d.funnel.stages;
    var rowH = 40, top = 26, labelW = 150, barW = 240, countX = labelW + barW + 12, rateX = 552;
    chart.setAttribute('viewBox', '0 0 560 ' + (top + 8 + rowH * stages.length));
    chart.appendChild(svg('text', { 'class': 'tick', x: rateX, y: 14, 'text-anchor': 'end' }, 'of the stage above'));
    var first = stages.length ? stages[0].count : 0;
    stages.forEach(function (s, i) {
      var y = top + i * rowH;
      chart.appendChild(svg('text', { x: 0, y: y + 19 }, s.label));
      chart.appendChild(svg('rect', { 'class': 'bar track', x: labelW, y: y + 5, width: barW, height: 20, rx: 3 }));
      var w = first > 0 ? Math.max(s.count > 0 ? 2 : 0, barW * s.count / first) : 0;
      chart.appendChild(svg('rect', { 'class': 'bar', x: labelW, y: y + 5, width: w.toFixed(1), height: 20, rx: 3,
        'data-stage': s.key }));
      chart.appendChild(svg('text', { x: countX, y: y + 19, 'data-metric': 'funnel.' + s.key }, people(s.count)));
      var rate = s.rate_of_previous === null ? '' : percent(s.rate_of_previous);
      chart.appendChild(svg('text', { 'class': 'rate', x: rateX, y: y + 19, 'text-anchor': 'end',
        'data-metric': 'funnel.' + s.key + '.rate' }, rate));
    });
  }

  // Bars of the median per bucket with the 90th percentile as a line; by day once tandems
  // formed on two days or more, else by matching round.
  function drawTimeToMatch(d) {
    var chart = $('chart-time');
    clear(chart);
    var t = d.time_to_match;
    var byDay = t.by_day.length >= 2;
    var points = byDay ? t.by_day : t.by_round;
    $('ttm-granularity').textContent = byDay ? 'per day' : 'per matching round';
    var W = 560, H = 220, left = 58, right = 10, topPad = 12, bottom = 34;
    chart.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    if (!points.length) {
      chart.appendChild(svg('text', { 'class': 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No tandem has formed yet.'));
      return;
    }
    var top = 0;
    points.forEach(function (p) { top = Math.max(top, p.p90_ms, p.median_ms); });
    var step = niceStep(top / 3);
    var max = step * Math.max(1, Math.ceil(top / step));
    var plotW = W - left - right, plotH = H - topPad - bottom;
    var y = function (ms) { return topPad + plotH - plotH * ms / max; };
    for (var v = 0; v <= max + step / 2; v += step) {
      chart.appendChild(svg('line', { 'class': 'axis', x1: left, x2: W - right, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }));
      chart.appendChild(svg('text', { 'class': 'tick', x: left - 6, y: (y(v) + 4).toFixed(1), 'text-anchor': 'end' }, duration(v)));
    }
    var slot = plotW / points.length;
    var barW = Math.max(3, Math.min(42, slot * 0.6));
    var line = [];
    var every = Math.ceil(points.length / 8);
    points.forEach(function (p, i) {
      var cx = left + slot * (i + 0.5);
      var h = Math.max(1, topPad + plotH - y(p.median_ms));
      var bar = svg('rect', { 'class': 'bar', x: (cx - barW / 2).toFixed(1), y: (topPad + plotH - h).toFixed(1),
        width: barW.toFixed(1), height: h.toFixed(1), 'data-point': p.label });
      bar.appendChild(svg('title', {}, p.label + ': median ' + duration(p.median_ms) + ', 90th percentile ' +
        duration(p.p90_ms) + ' (' + people(p.tandems) + ' tandems)'));
      chart.appendChild(bar);
      line.push(cx.toFixed(1) + ',' + y(p.p90_ms).toFixed(1));
      chart.appendChild(svg('circle', { 'class': 'p90dot', cx: cx.toFixed(1), cy: y(p.p90_ms).toFixed(1), r: 3 }));
      if (i % every === 0) {
        var label = byDay ? p.label.slice(5) : clockSeconds(p.at_ms);
        chart.appendChild(svg('text', { 'class': 'tick', x: cx.toFixed(1), y: H - bottom + 16, 'text-anchor': 'middle' }, label));
      }
    });
    if (line.length > 1) chart.appendChild(svg('polyline', { 'class': 'p90', points: line.join(' ') }));
    chart.appendChild(svg('line', { 'class': 'axis', x1: left, x2: W - right, y1: topPad + plotH, y2: topPad + plotH }));
  }

  function render(d) {
    renderKpis(d);
    renderNodes(d);
    renderReasons(d);
    renderRounds(d);
    renderOutcomes(d);
    drawFunnel(d);
    drawTimeToMatch(d);
    $('updated').textContent = 'updated ' + clockSeconds(d.generated_at_ms);
  }

  // ---- loading ------------------------------------------------------------------------------

  function load() {
    if (!currentKey) { showLogin(''); return; }
    fetch('/api/dashboard', {
      headers: { 'Authorization': 'Bearer ' + currentKey },
      cache: 'no-store',
      credentials: 'omit'
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        if (response.status === 401 || response.status === 403) {
          currentKey = null;
          storeKey(null);
          showLogin((body && body.error) || 'The key was refused.');
          return;
        }
        if (!response.ok || !body) {
          showProblem('The broker answered ' + response.status + ((body && body.error) ? ': ' + body.error : '') +
            '. Retrying in 15 seconds.');
          return;
        }
        showProblem('');
        $('login').hidden = true;
        $('board').hidden = false;
        $('logout').hidden = false;
        render(body);
        document.body.setAttribute('data-loaded', 'true');
      });
    }).catch(function () {
      showProblem('The broker cannot be reached. Retrying in 15 seconds.');
    });
  }

  function start(key) {
    currentKey = key;
    storeKey(key);
    load();
    if (!timer) timer = setInterval(load, REFRESH_MS);
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var key = $('key').value.trim();
      $('key').value = '';
      if (key) start(key);
    });
    $('logout').addEventListener('click', function () {
      currentKey = null;
      storeKey(null);
      showLogin('');
    });
    var key = keyFromFragment() || storedKey();
    if (key) start(key); else showLogin('');
  });
})();
