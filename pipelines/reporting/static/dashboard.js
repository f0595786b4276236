/* The KPI dashboard in the browser: loads compact per-team data, applies the filters and the
 * period to every card, draws the charts with Plotly (shipped in ../static) and exports what
 * is shown as CSV and Excel.
 *
 * Why classic <script> data files: a page opened from disk may load scripts beside it, while
 * Chromium refuses fetch() on file://. Each data file calls SKPI.receive(key, payload).
 *
 * Every text comes from META.text (the page language); every KPI from META.kpis (the
 * published registry); thresholds from META.settings (the run's settings). Text reaches the
 * DOM through textContent only, never innerHTML.
 *
 * window.SKPI is also the hook the browser tests drive: SKPI.ready, SKPI.set(state),
 * SKPI.table(cardId), SKPI.csv(cardId), SKPI.xlsx(cardId), SKPI.renders.
 */
(function () {
  'use strict';

  var META = JSON.parse(document.getElementById('skpi-meta').textContent);
  var T = META.text;
  var KPIS = META.kpis;
  var STATUS = META.statuses;
  var COLORS = {
    met: '#2e9e6a', below: '#e0673f', in_progress: '#a9bfdc', none: '#6f8fba',
    target: '#1f2a37', baseline: '#8e99a4', growth: '#f08c00', revenue: '#2f6fb0',
    revenueLight: '#b9cfe9', grid: '#e8ecf1', muted: '#6b7785', ink: '#1f2a37'
  };
  var PALETTE = ['#3b7dc4', '#1f3a5f', '#8fb8e3', '#2e9e6a', '#8e5bb5', '#c2571a', '#2f6fb0'];
  var STAGE_COLORS = ['#9ec5e8', '#5b9bd5', '#2f6fb0', '#1f3a5f'];
  var FONT = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
  // No mode bar: each card has its own table view and downloads.
  var PLOTLY_CONFIG = {displaylogo: false, responsive: true, displayModeBar: false};

  var store = {};          // key -> payload handed to SKPI.receive
  var waiting = {};        // key -> [resolve, reject] pairs
  var tables = {};         // card id -> {title, columns, rows} of what the card shows
  var views = {};          // card id -> 'chart' | 'table'
  var state = {team: '', rep: '', period: 'm12', from: '', to: ''};
  var SKPI = window.SKPI = window.SKPI || {};
  SKPI.renders = 0;

  // ------------------------------------------------------------------ text and numbers
  function tr(key, values) {
    var text = T[key] !== undefined ? T[key] : key;
    if (values) {
      Object.keys(values).forEach(function (name) {
        text = text.split('{' + name + '}').join(String(values[name]));
      });
    }
    return text;
  }
  function isNum(x) { return typeof x === 'number' && isFinite(x); }
  function fmtNumber(x, decimals) {
    if (!isNum(x)) return '–';
    var sep = META.separators;  // decimal point, then thousands separator
    var fixed = Math.abs(x).toFixed(decimals || 0).split('.');
    var whole = fixed[0].replace(/\B(?=(\d{3})+(?!\d))/g, sep.charAt(1));
    return (x < 0 ? '−' : '') + whole + (fixed[1] ? sep.charAt(0) + fixed[1] : '');
  }
  // Text from the data (rep, team and labeller names) as Plotly must be given it: Plotly reads
  // a few HTML tags in what it draws (links, bold, styles), so a name is escaped to show its
  // characters and make no element (Plotly turns the entities back into characters)
  function plotText(text) {
    return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function fmtPercent(x, decimals) { return isNum(x) ? fmtNumber(x * 100, decimals || 0) + '%' : '–'; }
  function fmtValue(x, unit) {
    if (!isNum(x)) return '–';
    if (unit === 'eur') return META.eur_prefix + fmtNumber(x, 0);
    if (unit === 'ratio') return fmtPercent(x);
    return fmtNumber(x, Math.round(x) === x ? 0 : 1);
  }
  // A count target is shown as the whole number needed to meet it (the exact one stays in
  // the marts): 26.4 leads means 27 to meet it.
  function shownTarget(t, unit) {
    if (!isNum(t)) return null;
    return unit === 'count' ? Math.ceil(t - 1e-9) : t;
  }
  function statusText(code) { return code ? tr(STATUS[code - 1]) : ''; }
  function statusName(code) { return code ? STATUS[code - 1] : null; }

  // ------------------------------------------------------------------ calendar
  function parseDay(iso) {
    var p = iso.split('-');
    return new Date(Date.UTC(+p[0], +p[1] - 1, +p[2]));
  }
  function isoDay(d) { return d.toISOString().slice(0, 10); }
  function addDays(iso, n) { var d = parseDay(iso); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); }
  function monthEnd(iso) {
    var d = parseDay(iso);
    return isoDay(new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)));
  }
  function isoWeek(iso) {
    var d = parseDay(iso);
    var day = (d.getUTCDay() + 6) % 7;
    d.setUTCDate(d.getUTCDate() - day + 3);
    var year = d.getUTCFullYear();
    var first = new Date(Date.UTC(year, 0, 4));
    var week = 1 + Math.round(((d - first) / 86400000 - 3 + ((first.getUTCDay() + 6) % 7)) / 7);
    return {week: week, year: year};
  }
  function dayMonth(iso) {
    var d = parseDay(iso);
    return {day: d.getUTCDate(), month: META.months_short[d.getUTCMonth()], year: d.getUTCFullYear()};
  }
  // "week 12 2026 (16–22 Mar)", "week 14 2026 (30 Mar–5 Apr)"
  function weekLong(iso) {
    var w = isoWeek(iso), a = dayMonth(iso), b = dayMonth(addDays(iso, 6));
    var days = a.month === b.month ? a.day + '–' + b.day + ' ' + b.month
      : a.day + ' ' + a.month + '–' + b.day + ' ' + b.month;
    return tr('week_long', {n: w.week, year: w.year, days: days});
  }
  function weekTick(iso) {
    var w = isoWeek(iso);
    return tr('week_tick', {n: w.week, yy: String(w.year).slice(2)});
  }
  function monthLong(iso) {
    var d = parseDay(iso);
    return META.months_long[d.getUTCMonth()] + ' ' + d.getUTCFullYear();
  }
  function monthTick(iso) {
    var d = parseDay(iso);
    return META.months_short[d.getUTCMonth()] + ' ' + d.getUTCFullYear();
  }
  function periodLong(iso, grain) { return grain === 'week' ? weekLong(iso) : monthLong(iso); }
  function periodTick(iso, grain) { return grain === 'week' ? weekTick(iso) : monthTick(iso); }
  function dayLong(iso) {
    var a = dayMonth(iso);
    return a.day + ' ' + a.month + ' ' + a.year;
  }

  var CAL = META.calendar;
  var asOf = META.as_of || CAL.week[CAL.week.length - 1] || CAL.month[CAL.month.length - 1];

  // The period as [from, to] (inclusive ISO days) for a preset or custom month range.
  function range() {
    var weeks = CAL.week, months = CAL.month, p = state.period;
    var first = [weeks[0], months[0]].filter(Boolean).sort()[0] || asOf;
    var n;
    if (p === 'custom' && state.from && state.to) {
      return state.from <= state.to ? [state.from, monthEnd(state.to)] : [state.to, monthEnd(state.from)];
    }
    if (p.charAt(0) === 'w') {
      n = parseInt(p.slice(1), 10);
      return [weeks[Math.max(0, weeks.length - n)] || first, asOf];
    }
    if (p.charAt(0) === 'm') {
      n = parseInt(p.slice(1), 10);
      return [months[Math.max(0, months.length - n)] || first, asOf];
    }
    if (p === 'ytd') return [asOf.slice(0, 4) + '-01-01', asOf];
    return [first, asOf];
  }
  function inRange(iso, grain, r) {
    if (grain === 'week') return iso >= r[0] && iso <= r[1];
    return monthEnd(iso) >= r[0] && iso <= r[1];
  }

  // ------------------------------------------------------------------ data
  function load(key, src) {
    if (store[key]) return Promise.resolve(store[key]);
    return new Promise(function (resolve, reject) {
      var first = !waiting[key];
      (waiting[key] = waiting[key] || []).push([resolve, reject]);
      if (!first) return;
      var script = document.createElement('script');
      script.src = src;
      script.async = true;
      script.onerror = function () {
        (waiting[key] || []).forEach(function (w) { w[1](new Error(tr('load_failed', {file: src}))); });
        delete waiting[key];
        script.remove();
      };
      document.head.appendChild(script);
    });
  }
  SKPI.receive = function (key, payload) {
    store[key] = payload;
    (waiting[key] || []).forEach(function (w) { w[0](payload); });
    delete waiting[key];
  };
  function teamBySlug(slug) {
    for (var i = 0; i < META.teams.length; i++) if (META.teams[i].slug === slug) return META.teams[i];
    return null;
  }
  // A team as an address names it: its slug, or the slug with the word team in front that
  // addresses made before 2026-12-08 carried (`#team=team-noord` for Team Noord).
  function linkedTeam(slug) {
    var earlier = 'team-';
    if (!slug || teamBySlug(slug) || slug.indexOf(earlier) !== 0) return slug;
    var named = slug.slice(earlier.length);
    return teamBySlug(named) ? named : slug;
  }
  function teamIndex(slug) {
    for (var i = 0; i < META.teams.length; i++) if (META.teams[i].slug === slug) return i;
    return -1;
  }

  // The selection as a scope: {kind: company|team|rep, id, name, series, baselines}.
  function scope() {
    var company = store.company;
    var team = teamBySlug(state.team);
    if (!team) {
      var ids = Object.keys(company.series.company);
      var cid = ids[0];
      return {kind: 'company', id: cid, name: tr('company'), series: company.series.company[cid],
        baselines: (company.baselines.company || {})[cid] || []};
    }
    var file = store['team:' + team.slug];
    if (state.rep && file) {
      var rep = null;
      file.reps.forEach(function (r) { if (r[0] === state.rep) rep = r; });
      if (rep) {
        return {kind: 'rep', id: rep[0], name: rep[1], team: team, series: file.series[rep[0]],
          baselines: file.baselines[rep[0]] || []};
      }
    }
    return {kind: 'team', id: team.name, name: team.label, team: team,
      series: company.series.team[team.name], baselines: (company.baselines.team || {})[team.name] || []};
  }
  // Rows of one KPI of a scope within the range: {p, iso, v, t, a, s, c, n, d}.
  function rowsOf(series, k, r) {
    var out = [];
    if (!series) return out;
    var grain = KPIS[k].grain, cal = CAL[grain];
    for (var i = 0; i < series.k.length; i++) {
      if (series.k[i] !== k) continue;
      var iso = cal[series.p[i]];
      if (r && !inRange(iso, grain, r)) continue;
      out.push({p: series.p[i], iso: iso, v: series.v[i], t: series.t[i], a: series.a[i],
        s: series.s[i], c: series.c[i], n: series.n[i], d: series.d[i]});
    }
    return out;
  }
  function kpiIndex(id) {
    for (var i = 0; i < KPIS.length; i++) if (KPIS[i].id === id) return i;
    return -1;
  }
  function kpisOf(kind, scopeKind, computation) {
    var out = [];
    KPIS.forEach(function (kpi, k) {
      if (kpi.kind === kind && kpi.scopes.indexOf(scopeKind) >= 0 &&
          (!computation || kpi.computation === computation)) out.push(k);
    });
    return out;
  }

  // ------------------------------------------------------------------ plotting helpers
  function baseLayout(el, extra) {
    var layout = {
      separators: META.separators,
      font: {family: FONT, size: 12, color: COLORS.ink},
      margin: {l: 58, r: 16, t: 34, b: 44},
      paper_bgcolor: 'white', plot_bgcolor: 'white',
      hovermode: 'closest',
      hoverlabel: {font: {family: FONT}},
      showlegend: true,
      legend: {orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom', font: {size: 11}},
      bargap: 0.25,
      xaxis: {type: 'category', showgrid: false, linecolor: '#c9d1db', tickfont: {color: COLORS.muted},
        tickangle: 0, automargin: true, fixedrange: true},
      yaxis: {gridcolor: COLORS.grid, zerolinecolor: '#c9d1db', tickfont: {color: COLORS.muted},
        automargin: true, fixedrange: true, rangemode: 'tozero'}
    };
    Object.keys(extra || {}).forEach(function (key) { layout[key] = extra[key]; });
    return layout;
  }
  function unitAxis(axis, unit) {
    if (unit === 'eur') { axis.tickprefix = META.eur_prefix; axis.tickformat = ',.0f'; }
    else if (unit === 'ratio') { axis.tickformat = '.0%'; }
    else { axis.tickformat = ',.0f'; }
    return axis;
  }
  // Label every n-th category so ticks never collide, always the latest one.
  function thinTicks(axis, categories, labels, el) {
    var width = (el && el.clientWidth) || 360;
    var max = Math.max(2, Math.floor(width / 78));
    var step = Math.max(1, Math.ceil(categories.length / max));
    var vals = [], text = [];
    for (var i = categories.length - 1; i >= 0; i -= step) { vals.unshift(categories[i]); text.unshift(labels[i]); }
    axis.tickmode = 'array'; axis.tickvals = vals; axis.ticktext = text;
    return axis;
  }
  function barColor(row) {
    var name = statusName(row.s);
    if (!isNum(row.t)) return row.c ? COLORS.none : COLORS.in_progress;
    if (!row.c) return COLORS.in_progress;
    return COLORS[name] || COLORS.none;
  }
  function draw(card, traces, layout) {
    var el = card.querySelector('.chart');
    if (!window.Plotly) throw new Error('Plotly is missing');
    window.Plotly.react(el, traces, layout, PLOTLY_CONFIG);
    el.setAttribute('data-rendered', String(SKPI.renders));
  }

  // ------------------------------------------------------------------ cards
  function setTable(card, title, columns, rows) {
    tables[card.id] = {title: title, columns: columns, rows: rows};
  }
  function col(key, label, type, unit) { return {key: key, label: label, type: type || 'text', unit: unit}; }

  function renderKpiCard(card, sc, r) {
    var k = kpiIndex(card.getAttribute('data-kpi'));
    var kpi = KPIS[k];
    var rows = rowsOf(sc.series, k, r);
    var cats = rows.map(function (x) { return x.iso; });
    var ticks = rows.map(function (x) { return periodTick(x.iso, kpi.grain); });
    var hover = rows.map(function (x) {
      var text = periodLong(x.iso, kpi.grain) + '<br>' + tr('actual') + ': ' + fmtValue(x.v, kpi.unit);
      if (isNum(x.t)) {
        text += '<br>' + tr('target') + ': ' + fmtValue(shownTarget(x.t, kpi.unit), kpi.unit) +
          ' · ' + tr('attainment') + ' ' + fmtPercent(x.a);
      }
      text += '<br>' + (x.c ? (statusText(x.s) || tr('none')) : tr('in_progress'));
      return text;
    });
    var traces = [{
      type: 'bar', x: cats, y: rows.map(function (x) { return x.v; }), name: tr('actual'),
      marker: {color: rows.map(barColor)}, customdata: hover,
      hovertemplate: '%{customdata}<extra></extra>', showlegend: false
    }];
    if (rows.some(function (x) { return isNum(x.t); })) {
      traces.push({type: 'scatter', mode: 'lines', x: cats, name: tr('target'),
        y: rows.map(function (x) { return shownTarget(x.t, kpi.unit); }),
        line: {color: COLORS.target, width: 2.2, shape: 'hvh'}, hoverinfo: 'skip'});
    }
    var baseline = null;
    sc.baselines.forEach(function (b) { if (b[0] === k) baseline = b; });
    if (baseline && rows.length) {
      traces.push({type: 'scatter', mode: 'lines', x: cats, name: tr('baseline'),
        y: rows.map(function () { return baseline[1]; }),
        line: {color: COLORS.baseline, width: 1.8, dash: 'dot'}, hoverinfo: 'skip'});
    }
    var el = card.querySelector('.chart');
    // the section's legend names the colours and lines, so the chart keeps its height
    var layout = baseLayout(el, {showlegend: false, margin: {l: 58, r: 16, t: 12, b: 44}});
    thinTicks(layout.xaxis, cats, ticks, el);
    unitAxis(layout.yaxis, kpi.unit);
    setTable(card, kpi.name, [
      col('period_start', tr('period_start')), col('period', tr('period')),
      col('scope', tr('scope')), col('kpi', tr('kpi')),
      col('actual', tr('actual'), 'number', kpi.unit), col('target', tr('target'), 'number', kpi.unit),
      col('attainment', tr('attainment'), 'number', 'ratio'), col('status', tr('status'))
    ], rows.map(function (x) {
      return {period_start: x.iso, period: periodLong(x.iso, kpi.grain), scope: sc.name,
        kpi: kpi.name, actual: x.v, target: shownTarget(x.t, kpi.unit), attainment: x.a,
        status: x.s ? (x.c ? statusText(x.s) : tr('in_progress')) : ''};
    }));
    return rows.length ? [traces, layout] : null;
  }

  // Attainment of each member (teams of the company, reps of a team) in the last complete
  // week of the period, per action KPI with a target.
  function renderAttainment(card, sc, r) {
    var action = kpisOf('action', sc.kind === 'company' ? 'team' : 'rep');
    var members = [];
    if (sc.kind === 'company') {
      META.teams.forEach(function (t) { members.push({name: t.label, series: store.company.series.team[t.name]}); });
    } else if (sc.kind === 'team') {
      var file = store['team:' + sc.team.slug];
      (file ? file.reps : []).forEach(function (rep) {
        members.push({name: rep[1], series: file.series[rep[0]]});
      });
    }
    // the last complete week inside the range, from the scope's own rows
    var week = null;
    action.forEach(function (k) {
      rowsOf(sc.series, k, r).forEach(function (x) { if (x.c && (!week || x.iso > week)) week = x.iso; });
    });
    var who = tr(sc.kind === 'company' ? 'who_team' : 'who_rep');
    var title = week ? tr('attainment_title', {who: who, period: weekLong(week)}) : tr('attainment');
    card.querySelector('h3').textContent = title;
    var tableRows = [], traces = [];
    var names = members.map(function (m) { return plotText(m.name); }).reverse();
    action.forEach(function (k, i) {
      var kpi = KPIS[k], ys = [], hover = [];
      members.slice().reverse().forEach(function (m) {
        var row = week ? rowsOf(m.series, k, [week, week]).filter(function (x) { return x.iso === week; })[0] : null;
        if (row && isNum(row.t)) {
          ys.push(row.a);
          hover.push(plotText(m.name) + '<br>' + kpi.name + ': ' + fmtPercent(row.a) + ' (' + fmtValue(row.v, kpi.unit) +
            ' / ' + fmtValue(shownTarget(row.t, kpi.unit), kpi.unit) + ')<br>' + weekLong(week));
        } else {
          ys.push(null);
          hover.push(plotText(m.name) + '<br>' + kpi.name + ': ' + tr('no_target'));
        }
        if (row) {
          tableRows.unshift({member: m.name, period_start: week, period: weekLong(week), kpi: kpi.name,
            actual: row.v, target: shownTarget(row.t, kpi.unit), attainment: row.a,
            status: row.s ? statusText(row.s) : ''});
        }
      });
      traces.push({type: 'bar', orientation: 'h', y: names, x: ys, name: kpi.name,
        marker: {color: PALETTE[i % PALETTE.length]}, customdata: hover,
        hovertemplate: '%{customdata}<extra></extra>'});
    });
    setTable(card, title, [
      col('member', tr(sc.kind === 'company' ? 'team' : 'rep')), col('period_start', tr('period_start')),
      col('period', tr('period')), col('kpi', tr('kpi')), col('actual', tr('actual'), 'number', 'count'),
      col('target', tr('target'), 'number', 'count'), col('attainment', tr('attainment'), 'number', 'ratio'),
      col('status', tr('status'))
    ], tableRows);
    if (!week || !members.length) return null;
    var el = card.querySelector('.chart');
    var height = Math.max(260, 70 + members.length * (10 + 9 * action.length));
    el.style.height = height + 'px';
    var all = traces.reduce(function (acc, t) { return acc.concat(t.x.filter(isNum)); }, []);
    var top = Math.min(Math.max(1.25, Math.max.apply(null, all.concat([0]))), 2.5) * 1.08;
    var layout = baseLayout(el, {barmode: 'group', bargap: 0.3, bargroupgap: 0.05,
      margin: {l: 12, r: 18, t: 34, b: 36},
      shapes: [{type: 'line', xref: 'x', yref: 'paper', x0: 1, x1: 1, y0: 0, y1: 1,
        line: {color: COLORS.target, width: 2, dash: 'dash'}}]});
    layout.xaxis = {type: 'linear', tickformat: '.0%', range: [0, top], gridcolor: COLORS.grid,
      tickfont: {color: COLORS.muted}, fixedrange: true};
    layout.yaxis = {type: 'category', automargin: true, tickfont: {color: COLORS.ink}, fixedrange: true};
    return [traces, layout];
  }

  function funnelCounts(sc, r) {
    var ti = sc.kind === 'company' ? null : teamIndex(sc.team.slug);
    var counts = META.stages.map(function () { return 0; });
    store.company.funnel.forEach(function (f) {
      if (ti !== null && f[0] !== ti) return;
      if (!inRange(CAL.month[f[1]], 'month', r)) return;
      counts[f[2]] += f[3];
    });
    return counts;
  }
  function renderFunnel(card, sc, r) {
    var counts = funnelCounts(sc, r);
    var names = META.stages.map(function (s) { return s.name; });
    setTable(card, tr('funnel_title'), [col('scope', tr('scope')), col('stage', tr('stage')),
      col('contacts', tr('contacts'), 'number', 'count'), col('from', tr('from')), col('to', tr('to'))],
      names.map(function (name, i) {
        return {scope: sc.name, stage: name, contacts: counts[i], from: r[0], to: r[1]};
      }));
    if (!counts.some(function (c) { return c > 0; })) return null;
    var el = card.querySelector('.chart');
    var layout = baseLayout(el, {showlegend: false, margin: {l: 120, r: 16, t: 16, b: 24}});
    layout.xaxis = {visible: false, fixedrange: true};
    layout.yaxis = {type: 'category', automargin: true, fixedrange: true};
    return [[{type: 'funnel', y: names, x: counts, textinfo: 'value+percent initial',
      textfont: {color: 'white', size: 13}, marker: {color: STAGE_COLORS},
      connector: {fillcolor: '#eef2f7'},
      customdata: names.map(function (n, i) {
        return n + ': ' + fmtNumber(counts[i]) + '<br>' + dayLong(r[0]) + ' – ' + dayLong(r[1]);
      }), hovertemplate: '%{customdata}<extra></extra>'}], layout];
  }

  function renderConversion(card, sc, r) {
    var conv = kpisOf('insight', sc.kind, 'conversion');
    var traces = [], tableRows = [];
    conv.forEach(function (k, i) {
      var kpi = KPIS[k], rows = rowsOf(sc.series, k, r);
      if (!rows.length) return;
      var color = PALETTE[i % PALETTE.length];
      var cats = rows.map(function (x) { return x.iso; });
      var hover = rows.map(function (x) {
        return monthLong(x.iso) + '<br>' + kpi.name + ': ' + fmtPercent(x.v) + ' (' + fmtNumber(x.n) + '/' +
          fmtNumber(x.d) + ')<br>' + tr(x.c ? 'mature' : 'immature');
      });
      var firstOpen = rows.findIndex(function (x) { return !x.c; });
      if (firstOpen < 0) firstOpen = rows.length;
      traces.push({type: 'scatter', mode: 'lines+markers', x: cats, name: kpi.name, legendgroup: kpi.id,
        y: rows.map(function (x) { return x.c ? x.v : null; }), line: {color: color, width: 2.4},
        marker: {size: 6}, customdata: hover, hovertemplate: '%{customdata}<extra></extra>'});
      traces.push({type: 'scatter', mode: 'lines+markers', x: cats, name: kpi.name, legendgroup: kpi.id,
        showlegend: false, opacity: 0.5,
        y: rows.map(function (x, j) { return (!x.c || j === firstOpen - 1) ? x.v : null; }),
        line: {color: color, width: 2, dash: 'dot'}, marker: {size: 6, symbol: 'circle-open'},
        customdata: hover, hovertemplate: '%{customdata}<extra></extra>'});
      rows.forEach(function (x) {
        tableRows.push({period_start: x.iso, period: monthLong(x.iso), scope: sc.name, kpi: kpi.name,
          value: x.v, numerator: x.n, denominator: x.d, maturity: tr(x.c ? 'mature' : 'immature')});
      });
    });
    setTable(card, tr('conversion_title'), [col('period_start', tr('period_start')),
      col('period', tr('cohort')), col('scope', tr('scope')), col('kpi', tr('kpi')),
      col('value', tr('value'), 'number', 'ratio'), col('numerator', tr('numerator'), 'number', 'count'),
      col('denominator', tr('denominator'), 'number', 'count'), col('maturity', tr('maturity'))], tableRows);
    if (!traces.length) return null;
    var el = card.querySelector('.chart');
    var cats = [];
    traces.forEach(function (t) { t.x.forEach(function (c) { if (cats.indexOf(c) < 0) cats.push(c); }); });
    cats.sort();
    var layout = baseLayout(el, {margin: {l: 52, r: 16, t: 56, b: 44}});
    layout.xaxis.categoryorder = 'array'; layout.xaxis.categoryarray = cats;
    thinTicks(layout.xaxis, cats, cats.map(monthTick), el);
    unitAxis(layout.yaxis, 'ratio');
    return [traces, layout];
  }

  function renderRevenue(card, sc, r) {
    var growth = kpisOf('insight', sc.kind, 'growth')[0];
    if (growth === undefined) return null;
    var base = kpiIndex(KPIS[growth].growth_of);
    if (base < 0) return null;
    var revenue = rowsOf(sc.series, base, r);
    var rates = {};
    rowsOf(sc.series, growth, r).forEach(function (x) { rates[x.iso] = x.v; });
    var ti = sc.kind === 'company' ? null : teamIndex(sc.team.slug);
    var won = {};
    store.company.won.forEach(function (w) {
      if (ti !== null && w[0] !== ti) return;
      var iso = CAL.month[w[1]];
      won[iso] = (won[iso] || 0) + w[2];
    });
    var cats = revenue.map(function (x) { return x.iso; });
    var rateOf = revenue.map(function (x) { return isNum(rates[x.iso]) ? rates[x.iso] : null; });
    var top = Math.min(Math.max(1, Math.max.apply(null, rateOf.filter(function (v) { return isNum(v) && v <= 3; }).concat([1]))), 3) * 1.1;
    var kpi = KPIS[base];
    setTable(card, tr('revenue_growth'), [col('period_start', tr('period_start')),
      col('period', tr('month')), col('scope', tr('scope')),
      col('revenue', kpi.name, 'number', 'eur'), col('won_deals', tr('won_deals'), 'number', 'count'),
      col('growth', KPIS[growth].name, 'number', 'ratio')],
      revenue.map(function (x, i) {
        return {period_start: x.iso, period: monthLong(x.iso), scope: sc.name, revenue: x.v,
          won_deals: won[x.iso] || 0, growth: rateOf[i]};
      }));
    if (!revenue.length) return null;
    var traces = [{type: 'bar', x: cats, y: revenue.map(function (x) { return x.v; }), name: kpi.name,
      marker: {color: revenue.map(function (x) { return x.c ? COLORS.revenue : COLORS.revenueLight; })},
      customdata: revenue.map(function (x) {
        return monthLong(x.iso) + '<br>' + kpi.name + ': ' + fmtValue(x.v, 'eur') + ' · ' +
          fmtNumber(won[x.iso] || 0) + ' ' + tr('won_deals') + (x.c ? '' : ' (' + tr('month_to_date') + ')');
      }), hovertemplate: '%{customdata}<extra></extra>'},
      {type: 'bar', x: cats, y: rateOf.map(function (v) { return isNum(v) ? Math.min(v, top) : null; }),
        name: KPIS[growth].name, yaxis: 'y2', xaxis: 'x',
        marker: {color: rateOf.map(function (v, i) {
          return !revenue[i].c ? '#f7cf8f' : (v || 0) >= 0 ? COLORS.growth : COLORS.below; })},
        text: rateOf.map(function (v) { return isNum(v) && v > top ? fmtPercent(v) : ''; }),
        textposition: 'inside', insidetextanchor: 'end', textfont: {size: 10, color: 'white'},
        customdata: rateOf.map(function (v, i) {
          return monthLong(cats[i]) + '<br>' + KPIS[growth].name + ': ' + (isNum(v) ? (v > 0 ? '+' : '') + fmtPercent(v) : '–');
        }), hovertemplate: '%{customdata}<extra></extra>'}];
    var el = card.querySelector('.chart');
    var layout = baseLayout(el, {margin: {l: 64, r: 16, t: 34, b: 44}});
    thinTicks(layout.xaxis, cats, cats.map(monthTick), el);
    layout.xaxis.anchor = 'y2';
    layout.yaxis = unitAxis({domain: [0.38, 1], gridcolor: COLORS.grid, tickfont: {color: COLORS.muted},
      rangemode: 'tozero', automargin: true, fixedrange: true}, 'eur');
    layout.yaxis2 = {domain: [0, 0.3], tickformat: '+.0%', range: [-1.05, top], gridcolor: COLORS.grid,
      zerolinecolor: '#9aa5b1', tickfont: {color: COLORS.muted}, automargin: true, fixedrange: true};
    return [traces, layout];
  }

  function renderLabels(card, sc) {
    var rows;
    if (sc.kind === 'company') rows = store.company.labels;
    else {
      var file = store['team:' + sc.team.slug];
      rows = file ? file.labels : [];
      if (sc.kind === 'rep') rows = rows.filter(function (x) { return x[0] === sc.id; });
    }
    var threshold = META.settings.max_label_disagreement;
    var judged = rows.filter(function (x) { return x[6]; });
    setTable(card, tr('labels_title'), [col('labeller', tr('labeller')), col('id', tr('labeller_id')),
      col('team', tr('team')), col('labels_judged', tr('labels_judged'), 'number', 'count'),
      col('inconsistent', tr('inconsistent'), 'number', 'count'),
      col('rate', tr('inconsistency_rate'), 'number', 'ratio'), col('flagged', tr('flagged_col'))],
      rows.map(function (x) {
        return {labeller: x[1], id: x[0], team: x[2] === 'Unassigned' ? tr('Unassigned') : x[2],
          labels_judged: x[3], inconsistent: x[4], rate: x[5], flagged: x[7] ? tr('yes') : tr('no')};
      }));
    card.setAttribute('data-flagged', rows.filter(function (x) { return x[7]; }).map(function (x) { return x[0]; }).join(' '));
    if (!judged.length) return null;
    var shown = judged.slice().sort(function (a, b) { return a[5] - b[5] || (a[0] < b[0] ? 1 : -1); });
    var names = shown.map(function (x) { return plotText(x[1] === x[0] ? x[0] : x[1] + ' (' + x[0] + ')'); });
    var el = card.querySelector('.chart');
    el.style.height = Math.max(240, 60 + 22 * shown.length) + 'px';
    var layout = baseLayout(el, {showlegend: false, margin: {l: 12, r: 24, t: 16, b: 36},
      shapes: isNum(threshold) ? [{type: 'line', xref: 'x', yref: 'paper', x0: threshold, x1: threshold,
        y0: 0, y1: 1, line: {color: COLORS.target, width: 2, dash: 'dash'}}] : [],
      annotations: isNum(threshold) ? [{x: threshold, xref: 'x', y: 0, yref: 'paper', yanchor: 'bottom',
        xanchor: 'left', showarrow: false, text: tr('threshold') + ' ' + fmtPercent(threshold),
        font: {size: 11, color: COLORS.ink}}] : []});
    layout.xaxis = {type: 'linear', tickformat: '.0%', rangemode: 'tozero', gridcolor: COLORS.grid,
      tickfont: {color: COLORS.muted}, fixedrange: true};
    layout.yaxis = {type: 'category', automargin: true, fixedrange: true};
    return [[{type: 'bar', orientation: 'h', y: names, x: shown.map(function (x) { return x[5]; }),
      marker: {color: shown.map(function (x) { return x[7] ? COLORS.below : '#9fb3cc'; })},
      customdata: shown.map(function (x) {
        return plotText(x[1]) + '<br>' + fmtPercent(x[5], 1) + ' (' + fmtNumber(x[4]) + '/' + fmtNumber(x[3]) + ')';
      }), hovertemplate: '%{customdata}<extra></extra>'}], layout];
  }

  function renderTiles(sc, r) {
    var box = document.getElementById('tiles');
    box.textContent = '';
    var result = kpisOf('result', sc.kind);
    // the last month of the period that has rows for this scope
    var month = null;
    result.forEach(function (k) {
      rowsOf(sc.series, k, r).forEach(function (x) { if (!month || x.iso > month) month = x.iso; });
    });
    var open = month && result.some(function (k) {
      return rowsOf(sc.series, k, [month, month]).some(function (x) { return x.iso === month && !x.c; });
    });
    var heading = month ? monthLong(month) + (open ? ' (' + tr('month_to_date') + ')' : '') : tr('this_month');
    document.getElementById('tiles-title').textContent = heading.charAt(0).toUpperCase() + heading.slice(1);
    document.getElementById('tiles-scope').textContent = sc.name;
    if (!month) return;
    result.forEach(function (k) {
      var kpi = KPIS[k];
      var row = rowsOf(sc.series, k, [month, month]).filter(function (x) { return x.iso === month; })[0];
      if (!row) return;
      var status = !isNum(row.t) ? 'none' : !row.c ? 'in_progress' : (statusName(row.s) || 'none');
      var tile = el('div', 'tile st-' + status);
      tile.title = kpi.definition;
      tile.setAttribute('data-kpi', kpi.id);
      tile.appendChild(el('div', 'name', kpi.name));
      tile.appendChild(el('div', 'value', fmtValue(row.v, kpi.unit)));
      var sub = isNum(row.t) ? tr('target') + ' ' + fmtValue(shownTarget(row.t, kpi.unit), kpi.unit) : tr('no_target');
      sc.baselines.forEach(function (b) {
        if (b[0] === k) sub += ' · ' + tr('baseline') + ' ' + fmtValue(b[1], kpi.unit);
      });
      tile.appendChild(el('div', 'sub', sub));
      var bar = el('div', 'bar'), fill = el('span');
      fill.style.width = (isNum(row.a) ? Math.max(0, Math.min(1, row.a)) * 100 : 0).toFixed(0) + '%';
      bar.appendChild(fill);
      tile.appendChild(bar);
      var foot = el('div', 'foot');
      foot.appendChild(el('span', 'badge st-' + status, tr(status)));
      foot.appendChild(el('span', 'att', tr('attainment') + ' ' + fmtPercent(row.a)));
      tile.appendChild(foot);
      box.appendChild(tile);
    });
    var growth = kpisOf('insight', sc.kind, 'growth')[0];
    if (growth !== undefined) {
      var rows = rowsOf(sc.series, growth, r).filter(function (x) { return x.c; });
      var last = rows[rows.length - 1];
      if (last) {
        var tile = el('div', 'tile insight');
        tile.title = KPIS[growth].definition;
        tile.setAttribute('data-kpi', KPIS[growth].id);
        tile.appendChild(el('div', 'name', KPIS[growth].name));
        tile.appendChild(el('div', 'value', isNum(last.v) ? (last.v > 0 ? '+' : '') + fmtPercent(last.v) : '–'));
        tile.appendChild(el('div', 'sub', monthLong(last.iso)));
        tile.appendChild(el('div', 'sub', tr('insight_help')));
        box.appendChild(tile);
      }
    }
  }

  // ------------------------------------------------------------------ tables and downloads
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function cellText(column, value) {
    if (column.type !== 'number') return value === null || value === undefined ? '' : String(value);
    return column.unit === 'ratio' ? fmtPercent(value, 1) : fmtValue(value, column.unit);
  }
  function renderTable(card) {
    var box = card.querySelector('.table-view');
    box.textContent = '';
    var t = tables[card.id];
    if (!t) return;
    var table = el('table', 'data'), head = el('thead'), tr_ = el('tr');
    t.columns.forEach(function (c) { tr_.appendChild(el('th', c.type === 'number' ? 'num' : '', c.label)); });
    head.appendChild(tr_);
    table.appendChild(head);
    var body = el('tbody');
    t.rows.forEach(function (row) {
      var line = el('tr');
      t.columns.forEach(function (c) { line.appendChild(el('td', c.type === 'number' ? 'num' : '', cellText(c, row[c.key]))); });
      body.appendChild(line);
    });
    table.appendChild(body);
    box.appendChild(table);
    box.appendChild(el('p', 'table-meta', tr('rows', {n: t.rows.length})));
  }
  // What the card shows as rows of raw values (numbers stay numbers: a spreadsheet sums them).
  function table(cardId) {
    var t = tables[cardId];
    if (!t) return null;
    return {title: t.title, columns: t.columns.map(function (c) { return {key: c.key, label: c.label, type: c.type}; }),
      rows: t.rows.map(function (row) { return t.columns.map(function (c) {
        var v = row[c.key];
        return v === undefined ? null : v;
      }); })};
  }
  function csv(cardId) {
    var t = table(cardId);
    if (!t) return '';
    function q(v) {
      if (v === null || v === undefined) return '';
      var s = String(v);
      // text a spreadsheet would run as a formula (= + - @, or a tab or CR before one: CSV
      // injection) is written with a leading apostrophe, which spreadsheets show as text
      if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
      return /[",\r\n;]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }
    var lines = [t.columns.map(function (c) { return q(c.label); }).join(',')];
    t.rows.forEach(function (row) { lines.push(row.map(q).join(',')); });
    return lines.join('\r\n') + '\r\n';
  }

  // A minimal .xlsx: a stored (uncompressed) zip of the SpreadsheetML parts Excel needs.
  var CRC = (function () {
    var table = [];
    for (var n = 0; n < 256; n++) {
      var c = n;
      for (var k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
      table.push(c >>> 0);
    }
    return table;
  })();
  function crc32(bytes) {
    var c = 0xFFFFFFFF;
    for (var i = 0; i < bytes.length; i++) c = CRC[(c ^ bytes[i]) & 0xFF] ^ (c >>> 8);
    return (c ^ 0xFFFFFFFF) >>> 0;
  }
  function zip(files) {
    var enc = new TextEncoder(), chunks = [], central = [], offset = 0;
    function u16(v) { return [v & 0xFF, (v >>> 8) & 0xFF]; }
    function u32(v) { return [v & 0xFF, (v >>> 8) & 0xFF, (v >>> 16) & 0xFF, (v >>> 24) & 0xFF]; }
    files.forEach(function (f) {
      var name = enc.encode(f.name), data = enc.encode(f.text), crc = crc32(data);
      var common = [].concat(u16(20), u16(0x0800), u16(0), u16(0), u16(0x21), u32(crc),
        u32(data.length), u32(data.length), u16(name.length), u16(0));
      var local = new Uint8Array([].concat(u32(0x04034b50), common));
      chunks.push(local, name, data);
      central.push(new Uint8Array([].concat(u32(0x02014b50), u16(20), common, u16(0), u16(0),
        u16(0), u32(0), u32(offset))), name);
      offset += local.length + name.length + data.length;
    });
    var size = central.reduce(function (s, c) { return s + c.length; }, 0);
    var end = new Uint8Array([].concat(u32(0x06054b50), u16(0), u16(0), u16(files.length),
      u16(files.length), u32(size), u32(offset), u16(0)));
    var all = chunks.concat(central, [end]), total = all.reduce(function (s, c) { return s + c.length; }, 0);
    var out = new Uint8Array(total), at = 0;
    all.forEach(function (c) { out.set(c, at); at += c.length; });
    return out;
  }
  function xml(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]; })
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');
  }
  function colName(i) { var s = ''; i += 1; while (i > 0) { var m = (i - 1) % 26; s = String.fromCharCode(65 + m) + s; i = Math.floor((i - 1) / 26); } return s; }
  function xlsx(cardId) {
    var t = table(cardId);
    if (!t) return null;
    var rows = [t.columns.map(function (c) { return c.label; })].concat(t.rows);
    var sheet = rows.map(function (row, r) {
      return '<row r="' + (r + 1) + '">' + row.map(function (v, c) {
        var ref = colName(c) + (r + 1);
        if (v === null || v === undefined || v === '') return '';
        if (typeof v === 'number' && isFinite(v)) return '<c r="' + ref + '"' + (r === 0 ? ' s="1"' : '') + '><v>' + v + '</v></c>';
        return '<c r="' + ref + '" t="inlineStr"' + (r === 0 ? ' s="1"' : '') + '><is><t xml:space="preserve">' + xml(v) + '</t></is></c>';
      }).join('') + '</row>';
    }).join('');
    var main = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
    var rel = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
    var name = xml(String(t.title).replace(/[\[\]:*?\/\\]/g, ' ').slice(0, 31) || 'Data');
    return zip([
      {name: '[Content_Types].xml', text: '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
        '<Default Extension="xml" ContentType="application/xml"/>' +
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>' +
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' +
        '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>' +
        '</Types>'},
      {name: '_rels/.rels', text: '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
        '<Relationship Id="rId1" Type="' + rel + '/officeDocument" Target="xl/workbook.xml"/></Relationships>'},
      {name: 'xl/workbook.xml', text: '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<workbook xmlns="' + main + '" xmlns:r="' + rel + '"><sheets><sheet name="' + name +
        '" sheetId="1" r:id="rId1"/></sheets></workbook>'},
      {name: 'xl/_rels/workbook.xml.rels', text: '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
        '<Relationship Id="rId1" Type="' + rel + '/worksheet" Target="worksheets/sheet1.xml"/>' +
        '<Relationship Id="rId2" Type="' + rel + '/styles" Target="styles.xml"/></Relationships>'},
      {name: 'xl/styles.xml', text: '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<styleSheet xmlns="' + main + '"><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>' +
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>' +
        '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>' +
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>' +
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>' +
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>' +
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs></styleSheet>'},
      {name: 'xl/worksheets/sheet1.xml', text: '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
        '<worksheet xmlns="' + main + '"><sheetData>' + sheet + '</sheetData></worksheet>'}
    ]);
  }
  function fileName(cardId, ext) {
    var r = range(), sc = scope();
    var who = (sc.kind === 'company' ? 'company' : sc.kind === 'team' ? sc.team.slug : sc.id);
    return (cardId.replace(/^card-/, '') + '_' + who + '_' + r[0] + '_' + r[1]).replace(/[^A-Za-z0-9_.-]+/g, '-') + '.' + ext;
  }
  function download(cardId, kind) {
    var blob = kind === 'csv'
      ? new Blob(['\uFEFF' + csv(cardId)], {type: 'text/csv;charset=utf-8'})
      : new Blob([xlsx(cardId)], {type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'});
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = fileName(cardId, kind);
    document.body.appendChild(a);
    a.click();
    // The browser reads the blob after the click, when it gets to it: on a busy machine that
    // took more than a second, and a URL revoked before then downloads nothing. A minute is
    // long enough for any start and costs only the table's own size meanwhile.
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 60000);
  }

  // ------------------------------------------------------------------ page state
  var RENDER = {kpi: renderKpiCard, attainment: renderAttainment, funnel: renderFunnel,
    conversion: renderConversion, revenue: renderRevenue, labels: renderLabels};

  function applyView(card) {
    var view = views[card.id] || 'chart';
    var hasRows = tables[card.id] && tables[card.id].rows.length;
    var drawn = card.getAttribute('data-drawn') === '1';
    card.querySelector('.chart').hidden = view !== 'chart' || !drawn;
    card.querySelector('.table-view').hidden = view !== 'table' || !hasRows;
    card.querySelector('.card-empty').hidden = view === 'chart' ? drawn : !!hasRows;
    card.querySelectorAll('.seg-btn').forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-view') === view ? 'true' : 'false');
    });
    card.querySelectorAll('.dl').forEach(function (b) { b.disabled = !hasRows; });
    if (view === 'table') renderTable(card);
    else if (drawn && window.Plotly) window.Plotly.Plots.resize(card.querySelector('.chart'));
  }

  function render() {
    var sc = scope(), r = range();
    SKPI.renders += 1;
    document.querySelectorAll('.scope-name').forEach(function (n) { n.textContent = sc.name; });
    document.getElementById('f-range').textContent = tr('showing') + ': ' + dayLong(r[0]) + ' – ' + dayLong(r[1]);
    renderTiles(sc, r);
    document.getElementById('insight-rep-note').hidden = sc.kind !== 'rep';
    document.querySelectorAll('.chart-card').forEach(function (card) {
      var scopes = (card.getAttribute('data-scopes') || '').split(',');
      var kind = card.getAttribute('data-card');
      var shown = scopes.indexOf(sc.kind) >= 0;
      card.hidden = !shown;
      if (!shown) { delete tables[card.id]; return; }
      var drawn = RENDER[kind](card, sc, r);
      if (drawn) {
        card.setAttribute('data-drawn', '1');
        card.querySelector('.chart').hidden = false;
        draw(card, drawn[0], drawn[1]);
      } else {
        card.setAttribute('data-drawn', '0');
        if (window.Plotly) window.Plotly.purge(card.querySelector('.chart'));
      }
      applyView(card);
    });
    ['action-block', 'result-block'].forEach(function (id) {
      var block = document.getElementById(id);
      block.hidden = !block.querySelector('.chart-card:not([hidden])');
    });
    document.getElementById('dashboard').setAttribute('data-state', 'ready');
    document.getElementById('dashboard').setAttribute('data-render', String(SKPI.renders));
  }

  function writeHash() {
    var parts = [];
    if (state.team) parts.push('team=' + encodeURIComponent(state.team));
    if (state.rep) parts.push('rep=' + encodeURIComponent(state.rep));
    parts.push('period=' + state.period);
    if (state.period === 'custom') parts.push('from=' + state.from, 'to=' + state.to);
    var hash = '#' + parts.join('&');
    if (location.hash !== hash && history.replaceState) history.replaceState(null, '', hash);
  }
  function readHash() {
    var out = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) out[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    return out;
  }

  function fillRepSelect(team) {
    var select = document.getElementById('f-rep');
    select.textContent = '';
    if (!team) {
      select.appendChild(el('option', '', tr('pick_team_first'))).value = '';
      select.disabled = true;
      return;
    }
    select.disabled = false;
    select.appendChild(el('option', '', tr('all_reps'))).value = '';
    store['team:' + team.slug].reps.forEach(function (rep) {
      var role = T['role_' + rep[2]] || rep[2];
      var label = rep[1] + (role ? ' · ' + role : '') + (rep[3] ? '' : ' · ' + tr('inactive'));
      select.appendChild(el('option', '', label)).value = rep[0];
    });
    select.value = state.rep;
    if (select.value !== state.rep) state.rep = '';
  }
  function fillMonthSelects() {
    ['f-from', 'f-to'].forEach(function (id) {
      var select = document.getElementById(id);
      CAL.month.forEach(function (m) { select.appendChild(el('option', '', monthLong(m))).value = m; });
    });
  }
  function syncControls() {
    document.getElementById('f-team').value = state.team;
    document.getElementById('f-period').value = state.period;
    document.querySelectorAll('.field.custom').forEach(function (f) { f.hidden = state.period !== 'custom'; });
    if (state.period === 'custom') {
      document.getElementById('f-from').value = state.from;
      document.getElementById('f-to').value = state.to;
    }
  }

  var busy = Promise.resolve();
  // Change the selection (any of team, rep, period, from, to); loads the team's file if
  // needed, then redraws every card. Resolves when the page shows the new state.
  SKPI.set = function (changes) {
    busy = busy.then(function () {
      Object.keys(changes || {}).forEach(function (key) { state[key] = changes[key] === null ? '' : String(changes[key]); });
      if (!teamBySlug(state.team)) { state.team = ''; state.rep = ''; }
      if (state.period === 'custom') {
        var months = CAL.month;
        if (!state.from) state.from = months[Math.max(0, months.length - 12)];
        if (!state.to) state.to = months[months.length - 1];
      }
      var team = teamBySlug(state.team);
      var status = document.getElementById('status-line');
      status.className = 'status-line';
      status.textContent = tr('loading');
      var wait = team ? load('team:' + team.slug, team.file) : Promise.resolve();
      return wait.then(function () {
        fillRepSelect(team);
        syncControls();
        writeHash();
        render();
        status.textContent = '';
      });
    }).catch(function (error) {
      var status = document.getElementById('status-line');
      status.className = 'status-line error';
      status.textContent = error.message;
      document.getElementById('dashboard').setAttribute('data-state', 'error');
    });
    return busy;
  };
  SKPI.state = function () { var copy = {}; Object.keys(state).forEach(function (k) { copy[k] = state[k]; }); copy.range = range(); return copy; };
  SKPI.table = table;
  SKPI.csv = csv;
  SKPI.xlsx = function (cardId) { var bytes = xlsx(cardId); return bytes ? Array.prototype.slice.call(bytes) : null; };
  SKPI.cards = function () {
    return Array.prototype.map.call(document.querySelectorAll('.chart-card:not([hidden])'), function (c) { return c.id; });
  };

  function wire() {
    // the filters form never submits (Enter in a date field): no inline handler, which the
    // page's content security policy refuses
    document.getElementById('filters').addEventListener('submit', function (e) { e.preventDefault(); });
    document.getElementById('f-team').addEventListener('change', function (e) { SKPI.set({team: e.target.value, rep: ''}); });
    document.getElementById('f-rep').addEventListener('change', function (e) { SKPI.set({rep: e.target.value}); });
    document.getElementById('f-period').addEventListener('change', function (e) { SKPI.set({period: e.target.value}); });
    document.getElementById('f-from').addEventListener('change', function (e) { SKPI.set({from: e.target.value}); });
    document.getElementById('f-to').addEventListener('change', function (e) { SKPI.set({to: e.target.value}); });
    document.querySelectorAll('.chart-card').forEach(function (card) {
      card.querySelectorAll('.seg-btn').forEach(function (b) {
        b.addEventListener('click', function () { views[card.id] = b.getAttribute('data-view'); applyView(card); });
      });
      card.querySelectorAll('.dl').forEach(function (b) {
        b.addEventListener('click', function () { download(card.id, b.getAttribute('data-download')); });
      });
    });
    var timer = null;
    window.addEventListener('resize', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { if (store.company) render(); }, 200);
    });
  }

  wire();
  fillMonthSelects();
  var initial = readHash();
  SKPI.ready = load('company', META.company_file).then(function () {
    var presets = ['w13', 'w26', 'w52', 'm6', 'm12', 'm24', 'ytd', 'all', 'custom'];
    return SKPI.set({
      team: linkedTeam(initial.team || ''), rep: initial.rep || '',
      period: presets.indexOf(initial.period) >= 0 ? initial.period : 'm12',
      from: initial.from || '', to: initial.to || ''
    });
  }).catch(function (error) {
    var status = document.getElementById('status-line');
    status.className = 'status-line error';
    status.textContent = error.message;
    document.getElementById('dashboard').setAttribute('data-state', 'error');
  });
})();
