/*
 * CAVRA Recovery Evidence Console.
 *
 * Plain JavaScript, no build step, no external resources. Talks only to the
 * gateway that served it (same origin) through the REST API (docs/api.md).
 * Every field read from a response may be missing or null: the page shows
 * a dash rather than failing.
 */
(function () {
  'use strict';

  var P = '/runtime/go-pilot/rollback-drill-notifications/acknowledgements/audit-delivery';
  var STREAM = '/runtime/go-pilot/rollback-drill-notifications';
  var DASHBOARD = STREAM + '/dashboard';
  var VERIFY = '/runtime/evidence/verify';
  var TOKEN_KEY = 'cavra.console.token';
  var OPERATOR_KEY = 'cavra.console.operator';

  var KIND_LABELS = {
    recovery_escalation_plan: 'Escalation plan',
    connector_delivery: 'Delivery attempt',
    recovery_escalation_ack: 'Acknowledgement',
    recovery_escalation_retry_plan: 'Retry plan',
    executive_report_schedule_run: 'Report run'
  };

  /* ---------------------------------------------------------------- utils */

  function $(id) { return document.getElementById(id); }

  function isNil(v) { return v === undefined || v === null; }

  function show(v) {
    if (isNil(v) || v === '') return '—';
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (Array.isArray(v)) return v.length ? v.map(show).join(', ') : '—';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function get(obj, path) {
    var cur = obj;
    for (var i = 0; i < path.length; i++) {
      if (isNil(cur) || typeof cur !== 'object') return undefined;
      cur = cur[path[i]];
    }
    return cur;
  }

  function asArray(v) { return Array.isArray(v) ? v : []; }

  /* el('tag', {attr: value, class: '', text: ''}, child, ...) */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (isNil(v) || v === false) return;
        if (k === 'text') node.textContent = v;
        else if (k === 'class') node.className = v;
        else if (k === 'dataset') Object.keys(v).forEach(function (d) { node.dataset[d] = v[d]; });
        else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? '' : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (isNil(c) || c === false) continue;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function fmtTime(iso) {
    if (typeof iso !== 'string' || iso === '') return '—';
    var m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
    return m ? m[1] + ' ' + m[2] : iso;
  }

  function levelClass(level) {
    var l = typeof level === 'string' ? level.toLowerCase() : '';
    if (l === 'critical' || l === 'warning' || l === 'healthy' || l === 'info') return l;
    return 'unknown';
  }

  function badge(level) {
    return el('span', { class: 'badge badge-' + levelClass(level), text: show(level) });
  }

  function jsonDetails(summary, value) {
    return el('details', { class: 'json' },
      el('summary', { text: summary }),
      el('pre', { text: JSON.stringify(value, null, 2) }));
  }

  /* ------------------------------------------------------------------ api */

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  function operator() {
    var v = $('operator').value.trim();
    return v === '' ? 'console' : v;
  }

  /*
   * api(method, path, body) -> {ok, status, data, error}
   * error is {detail, code, request_id} (from the server's error body, or
   * made up for network failures and non-JSON answers). Never throws.
   */
  function api(method, path, body) {
    var headers = { Accept: 'application/json' };
    var t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    var init = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        if (text) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        var out = { ok: res.ok, status: res.status, data: data, error: null,
                    replayed: res.headers.get('Idempotent-Replayed') === 'true' };
        if (!res.ok) {
          var detail = data && typeof data.detail === 'string' ? data.detail
            : (res.statusText || 'request failed');
          out.error = {
            detail: detail,
            code: data && data.code ? String(data.code) : '',
            request_id: (data && data.request_id) || res.headers.get('X-Request-Id') || ''
          };
          noteAuth(res.status, out.error, method);
        } else if (data === null) {
          out.ok = false;
          out.error = { detail: 'the gateway answered with a body that is not JSON', code: '', request_id: '' };
        } else if (path.indexOf('/runtime/') === 0) {
          // Only an API call proves the token got past authentication: a
          // public document (/openapi.json) answering 200 must not hide a
          // 401 banner that an API call raised just before.
          noteAuth(res.status, null, method);
        }
        return out;
      });
    }, function (err) {
      return { ok: false, status: 0, data: null, replayed: false,
               error: { detail: 'the gateway could not be reached (' + (err && err.message ? err.message : 'network error') + ')', code: 'UNAVAILABLE', request_id: '' } };
    });
  }

  /*
   * 401/403 get a plain banner under the header. A 401 (no or bad token)
   * stays until a call gets past authentication; a 403 (role missing for
   * an action) stays until a write succeeds, the token changes or the
   * operator dismisses it.
   */
  var authShown = 0;

  function hideAuth() {
    $('auth-banner').hidden = true;
    authShown = 0;
  }

  function noteAuth(status, error, method) {
    var text = $('auth-banner-text');
    if (status === 401 || status === 403) {
      clear(text);
      text.appendChild(el('strong', { text: status === 401 ? 'Not signed in (401). ' : 'Not allowed (403). ' }));
      text.appendChild(document.createTextNode(
        (error && error.detail ? error.detail + '. ' : '') +
        (status === 401 ? 'Enter a valid bearer token in the header.'
          : 'Your token lacks the role this action needs.')));
      $('auth-banner').hidden = false;
      authShown = status;
    } else if (status > 0) {
      if (authShown === 401) hideAuth();
      else if (authShown === 403 && method === 'POST' && status >= 200 && status < 300) hideAuth();
    }
  }

  /* ------------------------------------------------------------ dashboard */

  var CARD_FIELDS = [
    ['dash-plan-count', 'acknowledgement_audit_delivery_recovery_escalation_plan_count'],
    ['dash-failed-count', 'failed_delivery_count'],
    ['dash-ack-count', 'acknowledgement_audit_delivery_recovery_escalation_ack_count'],
    ['dash-retry-count', 'acknowledgement_audit_delivery_recovery_escalation_retry_plan_count'],
    ['dash-retryable-count', 'acknowledgement_audit_delivery_recovery_escalation_retryable_count'],
    ['dash-run-count', 'acknowledgement_audit_delivery_recovery_executive_report_schedule_run_count']
  ];

  function loadDashboard() {
    return api('GET', DASHBOARD).then(function (r) {
      var errNode = $('dash-error');
      if (!r.ok) {
        errNode.textContent = 'Dashboard unavailable: ' + r.error.detail + ' (HTTP ' + r.status + ')';
        errNode.hidden = false;
        return;
      }
      errNode.hidden = true;
      var d = r.data || {};
      CARD_FIELDS.forEach(function (f) {
        var v = d[f[1]];
        var node = $(f[0]);
        node.textContent = typeof v === 'number' ? v.toLocaleString('en-US') : show(v);
        node.dataset.value = isNil(v) ? '' : String(v);
      });
      var level = d.alert_level;
      $('dash-alert-level').textContent = show(level);
      $('dash-alert-level').dataset.value = isNil(level) ? '' : String(level);
      $('card-alert-level').dataset.level = levelClass(level);
      $('dash-updated').textContent = 'Updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
      renderOutstanding(d);
      renderChart(asArray(d.hourly_activity));
    });
  }

  /* ---------------------------------------------- awaiting acknowledgement */

  /* 90 -> "1 h 30 min", 3000 -> "2 d 2 h". */
  function fmtAge(min) {
    if (typeof min !== 'number' || !isFinite(min) || min < 0) return '—';
    if (min < 60) return min + ' min';
    if (min < 1440) return Math.floor(min / 60) + ' h' + (min % 60 ? ' ' + (min % 60) + ' min' : '');
    var d = Math.floor(min / 1440), h = Math.floor((min % 1440) / 60);
    return d.toLocaleString('en-US') + ' d' + (h ? ' ' + h + ' h' : '');
  }

  function renderOutstanding(d) {
    var body = $('outstanding-body');
    var list = asArray(d.outstanding_acknowledgements);
    var total = typeof d.outstanding_acknowledgement_count === 'number' ? d.outstanding_acknowledgement_count : list.length;
    clear(body);
    $('outstanding-count').textContent = total === 0 ? 'None open'
      : (list.length < total ? 'Showing the ' + list.length + ' most urgent of ' : '') +
        total.toLocaleString('en-US') + ' open pair' + (total === 1 ? '' : 's');
    if (list.length === 0) {
      body.appendChild(el('tr', { class: 'empty' }, el('td', { colspan: '6', text: 'Every open escalation has an acknowledgement.' })));
      return;
    }
    list.forEach(function (o) {
      o = o || {};
      var breached = o.slo_breached === true;
      body.appendChild(el('tr', { class: 'outstanding' + (breached ? ' breached' : ''),
        dataset: { plan: o.plan_id || '', provider: o.provider || '', severity: o.severity || '',
                   breached: String(breached), age: isNil(o.age_minutes) ? '' : String(o.age_minutes) } },
        el('td', { 'data-label': 'Plan' }, planButton(o.plan_id)),
        el('td', { 'data-label': 'Provider', text: show(o.provider) }),
        el('td', { 'data-label': 'Severity' }, badge(o.severity)),
        el('td', { class: 'nowrap', 'data-label': 'Age', text: fmtAge(o.age_minutes) }),
        el('td', { 'data-label': 'SLO' }, breached
          ? el('span', { class: 'badge badge-critical', text: 'breached' })
          : el('span', { class: 'muted small', text: 'within ' + show(o.recovery_slo_minutes) + ' min' })),
        el('td', { class: 'action' }, el('button', { type: 'button', class: 'btn btn-primary btn-small ack-row',
          'aria-label': 'Acknowledge ' + show(o.provider) + ' for plan ' + show(o.plan_id),
          text: 'Acknowledge',
          onclick: function () { prefillAck(o.plan_id, o.provider, breached); } }))));
    });
  }

  /* Fills the acknowledge form with (plan, provider) and moves there. */
  function prefillAck(planId, provider, breached) {
    if (typeof planId !== 'string' || planId === '') return Promise.resolve();
    if (!plans.has(planId)) {
      rememberPlan({ plan_id: planId }, true);
      renderPlanPickers();
    }
    var planSel = $('ack-plan');
    planSel.value = planId;
    // A fresh form for this row: the reason says what is known of it.
    $('ack-reason').value = breached ? 'recovery SLO breached' : '';
    return fillProviders(planSel, $('ack-provider')).then(function () {
      var provSel = $('ack-provider');
      if (Array.prototype.some.call(provSel.options, function (op) { return op.value === provider; })) {
        provSel.value = provider;
      }
      $('form-ack').scrollIntoView({ block: 'start' });
      $('ack-by').focus();
    });
  }

  /* -------------------------------------------------------------- chart */

  var SVG_NS = 'http://www.w3.org/2000/svg';

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'dataset') Object.keys(attrs[k]).forEach(function (d) { node.dataset[d] = attrs[k][d]; });
      else node.setAttribute(k, String(attrs[k]));
    });
    return node;
  }

  /*
   * Grouped bars per hour (acknowledgements, failed deliveries) from the
   * dashboard's hourly_activity: 24 buckets, oldest first. Drawn in a
   * fixed viewBox and scaled to the width of the page.
   */
  function renderChart(hours) {
    var box = $('chart-svg');
    var W = 720, H = 190, left = 34, right = 8, top = 10, bottom = 26;
    var plotW = W - left - right, plotH = H - top - bottom;
    var max = 1, sumA = 0, sumF = 0;
    hours.forEach(function (h) {
      var a = Number(h && h.acknowledgement_count) || 0, f = Number(h && h.failed_delivery_count) || 0;
      max = Math.max(max, a, f);
      sumA += a;
      sumF += f;
    });
    clear(box);
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-labelledby': 'chart-title chart-desc',
                            preserveAspectRatio: 'none', focusable: 'false' });
    root.appendChild(svg('desc', { id: 'chart-desc', text: hours.length === 0 ? 'No data.'
      : sumA + ' acknowledgements and ' + sumF + ' failed deliveries in the last ' + hours.length + ' hours; the most in one hour: ' + max + '.' }));
    // Gridlines at 0, half and the maximum.
    [0, 0.5, 1].forEach(function (q) {
      var y = top + plotH - q * plotH;
      root.appendChild(svg('line', { class: 'grid', x1: left, x2: W - right, y1: y, y2: y }));
      if (q > 0 && (q === 1 || max >= 2)) {
        root.appendChild(svg('text', { class: 'axis', x: left - 4, y: y + 4, 'text-anchor': 'end',
                                       text: String(Math.round(q * max)) }));
      }
    });
    root.appendChild(svg('text', { class: 'axis', x: left - 4, y: top + plotH + 4, 'text-anchor': 'end', text: '0' }));
    var slot = hours.length ? plotW / hours.length : plotW;
    var barW = Math.max(1, (slot - 3) / 2);
    hours.forEach(function (h, i) {
      h = h || {};
      var a = Number(h.acknowledgement_count) || 0, f = Number(h.failed_delivery_count) || 0;
      var x = left + i * slot + 1.5;
      var hour = typeof h.hour_start === 'string' ? h.hour_start.slice(11, 16) : '';
      var g = svg('g', { class: 'hour', dataset: { hour: h.hour_start || '' } });
      g.appendChild(svg('title', { text: hour + ' UTC: ' + a + ' acknowledgement' + (a === 1 ? '' : 's') + ', ' +
                                         f + ' failed deliver' + (f === 1 ? 'y' : 'ies') }));
      var ah = (a / max) * plotH, fh = (f / max) * plotH;
      g.appendChild(svg('rect', { class: 'bar-ack', x: x.toFixed(2), y: (top + plotH - ah).toFixed(2),
        width: barW.toFixed(2), height: ah.toFixed(2), dataset: { count: String(a) } }));
      g.appendChild(svg('rect', { class: 'bar-failed', x: (x + barW).toFixed(2), y: (top + plotH - fh).toFixed(2),
        width: barW.toFixed(2), height: fh.toFixed(2), dataset: { count: String(f) } }));
      if (i % 6 === 0 || i === hours.length - 1) {
        g.appendChild(svg('text', { class: 'axis', x: (x + barW).toFixed(2), y: H - 8, 'text-anchor': 'middle', text: hour }));
      }
      root.appendChild(g);
    });
    box.appendChild(root);
    $('chart-totals').textContent = 'Last 24 hours: ' + sumA.toLocaleString('en-US') + ' acknowledgement' + (sumA === 1 ? '' : 's') +
      ', ' + sumF.toLocaleString('en-US') + ' failed deliver' + (sumF === 1 ? 'y' : 'ies') + '.';
  }

  /* -------------------------------------------------------------- verify */

  /* Whether the gateway offers the verification: its OpenAPI document
   * lists the route. (Calling it would walk the whole chain, and a second
   * walk meanwhile is refused with 429.) */
  function probeVerify() {
    return api('GET', '/openapi.json').then(function (r) {
      var paths = r.ok && r.data && r.data.paths;
      $('verify-btn').hidden = !(paths && paths[VERIFY] && paths[VERIFY].get);
    });
  }

  function runVerify() {
    var btn = $('verify-btn');
    var out = $('verify-result');
    btn.disabled = true;
    out.hidden = false;
    out.className = 'verify-result';
    out.textContent = 'Verifying the evidence chain…';
    return api('GET', VERIFY).then(function (r) {
      clear(out);
      if (!r.ok) {
        out.className = 'verify-result verify-bad';
        out.appendChild(el('strong', { text: 'Verification failed to run: ' }));
        out.appendChild(document.createTextNode(r.error.detail + ' (HTTP ' + r.status + ')'));
        return;
      }
      var d = r.data || {};
      if (d.valid === true) {
        out.className = 'verify-result verify-ok';
        out.appendChild(el('strong', { text: 'Evidence chain valid. ' }));
        out.appendChild(document.createTextNode(show(d.events) + ' events; head '));
        out.appendChild(el('code', { class: 'hash', text: show(d.head) }));
      } else {
        out.className = 'verify-result verify-bad';
        out.appendChild(el('strong', { text: 'Evidence chain BROKEN. ' }));
        var parts = [];
        Object.keys(d).forEach(function (k) {
          if (k !== 'valid' && k !== 'actor') parts.push(k + ': ' + show(d[k]));
        });
        out.appendChild(document.createTextNode(parts.join('; ')));
      }
    }).then(function () { btn.disabled = false; });
  }

  /* ---------------------------------------------------------------- plans */

  /* plan_id -> {plan_id, providers|null, alert_level, generated_at} */
  var plans = new Map();
  var planOrder = []; // newest first

  function rememberPlan(plan, front) {
    if (!plan || typeof plan.plan_id !== 'string') return;
    var prev = plans.get(plan.plan_id) || {};
    var providers = Array.isArray(plan.selected_providers) ? plan.selected_providers.slice() : (prev.providers || null);
    plans.set(plan.plan_id, {
      plan_id: plan.plan_id,
      providers: providers,
      alert_level: plan.alert_level || prev.alert_level || null,
      generated_at: plan.generated_at || prev.generated_at || null
    });
    var i = planOrder.indexOf(plan.plan_id);
    if (i >= 0) {
      if (!front) return;
      planOrder.splice(i, 1);
    }
    if (front) planOrder.unshift(plan.plan_id); else planOrder.push(plan.plan_id);
  }

  function loadRecentPlans() {
    return api('GET', STREAM + '?kind=recovery_escalation_plan&limit=50').then(function (r) {
      if (!r.ok) return;
      var items = asArray(r.data && r.data.items);
      // The stream is newest first; keep plans created here on top.
      items.forEach(function (it) {
        var rec = it && it.record && typeof it.record === 'object' ? it.record : {};
        var plan = Object.assign({}, rec);
        if (!plan.plan_id) plan.plan_id = it.plan_id || it.record_id;
        if (!plan.generated_at) plan.generated_at = it.created_at;
        rememberPlan(plan, false);
      });
      planOrder.sort(function (a, b) {
        var ga = plans.get(a).generated_at || '', gb = plans.get(b).generated_at || '';
        return ga < gb ? 1 : ga > gb ? -1 : 0;
      });
    }).then(renderPlanPickers);
  }

  function planLabel(p) {
    var bits = [p.plan_id];
    if (p.alert_level) bits.push(p.alert_level);
    if (p.providers && p.providers.length) bits.push(p.providers.join(', '));
    if (p.generated_at) bits.push(fmtTime(p.generated_at));
    return bits.join(' · ');
  }

  function renderPlanPickers() {
    var pickers = document.querySelectorAll('select.plan-picker');
    Array.prototype.forEach.call(pickers, function (sel) {
      var optional = sel.dataset.optional === 'true';
      var current = sel.value;
      clear(sel);
      if (optional) sel.appendChild(el('option', { value: '', text: 'All plans' }));
      else if (planOrder.length === 0) sel.appendChild(el('option', { value: '', text: 'No plans yet: record one first' }));
      planOrder.slice(0, 50).forEach(function (id) {
        sel.appendChild(el('option', { value: id, text: planLabel(plans.get(id)) }));
      });
      if (current && plans.has(current)) sel.value = current;
      else if (!optional && planOrder.length) sel.value = planOrder[0];
      if (sel.value !== current) sel.dispatchEvent(new Event('change'));
    });
  }

  function selectPlanEverywhere(planId) {
    ['delivery-plan', 'ack-plan'].forEach(function (id) {
      var sel = $(id);
      if (sel.value !== planId && plans.has(planId)) {
        sel.value = planId;
        sel.dispatchEvent(new Event('change'));
      }
    });
  }

  /* Fills a provider <select> from the chosen plan's selected_providers. */
  function fillProviders(planSelect, providerSelect) {
    var planId = planSelect.value;
    var keep = providerSelect.value;
    function render(list, note) {
      // What is chosen now wins over what was chosen when the load began:
      // the answer may arrive after the user picked a provider.
      var chosen = providerSelect.value || keep;
      clear(providerSelect);
      if (!list || list.length === 0) {
        providerSelect.appendChild(el('option', { value: '', text: note || 'Choose a plan first' }));
        return;
      }
      list.forEach(function (p) { providerSelect.appendChild(el('option', { value: p, text: p })); });
      if (chosen && list.indexOf(chosen) >= 0) providerSelect.value = chosen;
    }
    if (!planId) { render(null); return Promise.resolve(); }
    var known = plans.get(planId);
    render(known && known.providers, 'Loading providers…');
    return api('GET', P + '/recovery-escalations/' + encodeURIComponent(planId)).then(function (r) {
      if (planSelect.value !== planId) return; // the user moved on
      if (r.ok && r.data && r.data.plan) {
        rememberPlan(r.data.plan, false);
        render(plans.get(planId).providers, 'This plan routes to no provider');
      } else if (!(known && known.providers)) {
        render(null, 'Providers unavailable: ' + (r.error ? r.error.detail : 'unknown error'));
      }
    });
  }

  /* --------------------------------------------------------------- forms */

  function setBusy(form, busy) {
    form.setAttribute('aria-busy', busy ? 'true' : 'false');
    Array.prototype.forEach.call(form.querySelectorAll('button'), function (b) {
      if (busy) {
        b.dataset.wasDisabled = b.disabled ? '1' : '';
        b.disabled = true;
      } else {
        b.disabled = b.dataset.wasDisabled === '1';
      }
    });
    var submit = form.querySelector('button[type=submit]');
    if (submit) {
      if (busy) { submit.dataset.label = submit.textContent; submit.textContent = 'Working…'; }
      else if (submit.dataset.label) submit.textContent = submit.dataset.label;
    }
  }

  function resultOk(node, label, id, extra) {
    clear(node);
    node.className = 'result result-ok';
    node.appendChild(el('span', { class: 'result-label', text: label + ' ' }));
    node.appendChild(el('code', { class: 'result-id', text: show(id) }));
    if (extra) node.appendChild(el('span', { class: 'result-extra', text: ' ' + extra }));
  }

  function resultError(node, r) {
    clear(node);
    node.className = 'result result-error';
    node.appendChild(el('strong', { text: r.status ? 'Error ' + r.status + ': ' : 'Error: ' }));
    node.appendChild(el('span', { class: 'result-detail', text: r.error ? r.error.detail : 'request failed' }));
    var meta = [];
    if (r.error && r.error.code) meta.push(r.error.code);
    if (r.error && r.error.request_id) meta.push('request ' + r.error.request_id);
    if (meta.length) node.appendChild(el('span', { class: 'result-meta', text: ' (' + meta.join(', ') + ')' }));
  }

  function clientError(node, text) {
    resultError(node, { status: 0, error: { detail: text, code: '', request_id: '' } });
  }

  /* Value of a number input: undefined when empty, NaN when not a number. */
  function numberField(input) {
    if (input.validity && input.validity.badInput) return NaN;
    var v = input.value.trim();
    if (v === '') return undefined;
    return Number(v);
  }

  function textField(input) {
    var v = input.value.trim();
    return v === '' ? undefined : v;
  }

  function collectNumbers(spec, resultNode) {
    var out = {};
    for (var i = 0; i < spec.length; i++) {
      var input = $(spec[i][0]);
      var v = numberField(input);
      if (typeof v === 'number' && isNaN(v)) {
        clientError(resultNode, spec[i][1] + ' must be a number');
        input.focus();
        return null;
      }
      if (v !== undefined) out[spec[i][1]] = v;
    }
    return out;
  }

  /* submitForm(form, build, send, done): build() returns the request or
   * null (already reported); send(req) returns api(); done(r) on success. */
  function wireForm(form, build, send, done) {
    var resultNode = $(form.id + '-result');
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (form.getAttribute('aria-busy') === 'true') return;
      var req = build(resultNode);
      if (req === null) return;
      setBusy(form, true);
      clear(resultNode);
      resultNode.className = 'result result-pending';
      resultNode.textContent = 'Sending…';
      send(req).then(function (r) {
        if (r.ok) done(r, resultNode);
        else resultError(resultNode, r);
        return refreshAll();
      }).then(function () { finish(); }, function (e) {
        clientError(resultNode, 'unexpected page error: ' + (e && e.message ? e.message : e));
        finish();
      });
      function finish() {
        setBusy(form, false);
        // A counter that tests (and scripts) can wait on.
        form.dataset.completed = String(Number(form.dataset.completed || 0) + 1);
      }
    });
  }

  /* Escalation plan routes ----------------------------------------------- */

  var routeSeq = 0;

  function renumberRoutes() {
    var rows = $('plan-routes').querySelectorAll('.route');
    Array.prototype.forEach.call(rows, function (row, i) {
      row.querySelector('.route-title').textContent = 'Route ' + (i + 1);
      var rm = row.querySelector('.route-remove');
      rm.disabled = rows.length === 1;
      rm.setAttribute('aria-label', 'Remove route ' + (i + 1));
    });
  }

  function addRoute(defaults) {
    var tpl = $('route-row');
    var frag = tpl.content.cloneNode(true);
    var row = frag.querySelector('.route');
    var n = ++routeSeq;
    Array.prototype.forEach.call(row.querySelectorAll('[data-name]'), function (input) {
      input.id = 'route-' + n + '-' + input.dataset.name.replace(/_/g, '-');
      input.name = 'route-' + n + '-' + input.dataset.name;
    });
    Array.prototype.forEach.call(row.querySelectorAll('label[data-for]'), function (label) {
      label.htmlFor = 'route-' + n + '-' + label.dataset.for.replace(/_/g, '-');
    });
    var d = defaults || {};
    if (d.provider) row.querySelector('[data-name=provider]').value = d.provider;
    if (d.severity) row.querySelector('[data-name=severity]').value = d.severity;
    if (d.reason) row.querySelector('[data-name=reason]').value = d.reason;
    if (d.slo_breached) row.querySelector('[data-name=slo_breached]').checked = true;
    row.querySelector('[data-name=provider]').placeholder = 'e.g. slack';
    row.querySelector('.route-remove').addEventListener('click', function () {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.parentNode.removeChild(row);
      renumberRoutes();
      if (next) next.querySelector('input').focus();
      else $('plan-add-route').focus();
    });
    $('plan-routes').appendChild(row);
    renumberRoutes();
    return row;
  }

  function buildPlan(resultNode) {
    var nums = collectNumbers([['plan-slo', 'recovery_slo_minutes']], resultNode);
    if (nums === null) return null;
    var routes = [];
    Array.prototype.forEach.call($('plan-routes').querySelectorAll('.route'), function (row) {
      var route = {
        provider: row.querySelector('[data-name=provider]').value.trim(),
        severity: row.querySelector('[data-name=severity]').value,
        slo_breached: row.querySelector('[data-name=slo_breached]').checked
      };
      var reason = row.querySelector('[data-name=reason]').value.trim();
      if (reason) route.reason = reason;
      routes.push(route);
    });
    var body = { generated_by: operator(), escalation_routes: routes };
    if (nums.recovery_slo_minutes !== undefined) body.recovery_slo_minutes = nums.recovery_slo_minutes;
    return body;
  }

  /* Executive report ------------------------------------------------------ */

  function metric(label, value) {
    return el('div', { class: 'metric' },
      el('dt', { text: label }),
      el('dd', { text: typeof value === 'number' ? value.toLocaleString('en-US') : show(value) }));
  }

  function renderReport(run, note) {
    var view = $('report-view');
    clear(view);
    if (!run || typeof run !== 'object') {
      view.appendChild(el('p', { class: 'muted', id: 'report-empty', text: 'No executive report run yet.' }));
      return;
    }
    var rep = run.executive_report && typeof run.executive_report === 'object' ? run.executive_report : {};
    var sum = rep.executive_summary && typeof rep.executive_summary === 'object' ? rep.executive_summary : {};
    var sched = run.schedule && typeof run.schedule === 'object' ? run.schedule : {};
    var status = !isNil(sum.status) ? sum.status : (rep.alert_level || run.alert_level);

    view.appendChild(el('header', { class: 'report-head' },
      el('div', { class: 'report-title' },
        el('h3', { text: 'Recovery status report' }),
        el('span', { class: 'report-status' },
          el('span', { class: 'visually-hidden', text: 'Status: ' }),
          el('span', { id: 'report-status', class: 'badge badge-lg badge-' + levelClass(status), text: show(status) }))),
      el('p', { class: 'muted small' },
        'Run ', el('code', { id: 'report-run-id', text: show(run.run_id) }),
        ' · generated ' + fmtTime(run.generated_at || rep.generated_at) + ' UTC',
        ' · window ' + fmtTime(sched.window_start || rep.window_start) + ' – ' + fmtTime(sched.window_end || rep.window_end),
        sched.cadence ? ' · ' + sched.cadence : null,
        note ? ' · ' + note : null)));

    view.appendChild(el('section', { class: 'report-block' },
      el('h4', { text: 'Business impact' }),
      el('p', { id: 'report-impact', class: 'impact', text: show(sum.business_impact) })));

    view.appendChild(el('dl', { class: 'metrics' },
      metric('Escalations', sum.escalation_count),
      metric('Critical', sum.critical_escalation_count),
      metric('SLO breached', sum.slo_breached_count),
      metric('Open recoveries', sum.open_recovery_count),
      metric('Unacknowledged', sum.unacknowledged_count),
      metric('Failed deliveries', sum.failed_delivery_count),
      metric('Retryable', sum.retryable_count),
      metric('Acknowledge\u00ADments', sum.acknowledgement_count)));

    var risks = asArray(rep.key_risks);
    var riskBlock = el('section', { class: 'report-block' }, el('h4', { text: 'Key risks' }));
    if (risks.length === 0) {
      riskBlock.appendChild(el('p', { id: 'report-risks', class: 'muted', text: 'No key risks.' }));
    } else {
      var tb = el('tbody');
      risks.forEach(function (k) {
        k = k || {};
        tb.appendChild(el('tr', null,
          el('td', null, badge(k.severity)),
          el('td', { text: show(k.risk) }),
          el('td', { class: 'num', text: show(k.count) }),
          el('td', { text: show(k.owner) })));
      });
      riskBlock.appendChild(el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Key risks table (scrollable)' },
        el('table', { id: 'report-risks', class: 'data compact' },
          el('thead', null, el('tr', null,
            el('th', { scope: 'col', text: 'Severity' }), el('th', { scope: 'col', text: 'Risk' }),
            el('th', { scope: 'col', class: 'num', text: 'Count' }), el('th', { scope: 'col', text: 'Owner' }))),
          tb)));
    }
    view.appendChild(riskBlock);

    var actions = asArray(rep.recommended_actions);
    var actBlock = el('section', { class: 'report-block' }, el('h4', { text: 'Recommended actions' }));
    if (actions.length === 0) actBlock.appendChild(el('p', { id: 'report-actions', class: 'muted', text: 'No actions recommended.' }));
    else {
      var ol = el('ol', { id: 'report-actions', class: 'actions' });
      actions.forEach(function (a) { ol.appendChild(el('li', { text: show(a) })); });
      actBlock.appendChild(ol);
    }
    view.appendChild(actBlock);

    var provs = asArray(rep.provider_summary);
    var provBlock = el('section', { class: 'report-block' }, el('h4', { text: 'Provider summary' }));
    if (provs.length === 0) provBlock.appendChild(el('p', { id: 'report-providers', class: 'muted', text: 'No providers tracked.' }));
    else {
      var pb = el('tbody');
      provs.forEach(function (p) {
        p = p || {};
        pb.appendChild(el('tr', null,
          el('th', { scope: 'row', text: show(p.provider) }),
          el('td', { class: 'num', text: show(p.open_recovery_count) }),
          el('td', { class: 'num', text: show(p.critical_escalation_count) }),
          el('td', { class: 'num', text: show(p.unacknowledged_count) }),
          el('td', { class: 'num', text: show(p.failed_delivery_count) }),
          el('td', { class: 'num', text: show(p.acknowledgement_count) }),
          el('td', { text: show(p.latest_acknowledgement_state) })));
      });
      provBlock.appendChild(el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Provider summary table (scrollable)' },
        el('table', { id: 'report-providers', class: 'data compact' },
          el('thead', null, el('tr', null,
            el('th', { scope: 'col', text: 'Provider' }),
            el('th', { scope: 'col', class: 'num', text: 'Open' }),
            el('th', { scope: 'col', class: 'num', text: 'Critical' }),
            el('th', { scope: 'col', class: 'num', text: 'Unacked' }),
            el('th', { scope: 'col', class: 'num', text: 'Failed deliveries' }),
            el('th', { scope: 'col', class: 'num', text: 'Acks' }),
            el('th', { scope: 'col', text: 'Latest state' }))),
          pb)));
    }
    view.appendChild(provBlock);
    view.appendChild(jsonDetails('Run record (JSON)', run));
  }

  function loadLatestReport() {
    return api('GET', STREAM + '?kind=executive_report_schedule_run&limit=1').then(function (r) {
      if (!r.ok) return;
      var it = asArray(r.data && r.data.items)[0];
      if (it && it.record && typeof it.record === 'object') {
        var current = $('report-run-id');
        // Keep a report the operator just produced unless the stream has a newer one.
        if (!current || current.textContent !== String(it.record.run_id)) renderReport(it.record, null);
      }
    });
  }

  /* -------------------------------------------------------- evidence stream */

  var stream = { cursor: '', back: [], next: null, filters: { kind: '', plan_id: '', provider: '' }, limit: 25 };

  function streamQuery() {
    var q = [];
    Object.keys(stream.filters).forEach(function (k) {
      if (stream.filters[k]) q.push(k + '=' + encodeURIComponent(stream.filters[k]));
    });
    q.push('limit=' + stream.limit);
    if (stream.cursor) q.push('cursor=' + encodeURIComponent(stream.cursor));
    return STREAM + '?' + q.join('&');
  }

  function planButton(planId) {
    if (!planId) return document.createTextNode('—');
    return el('button', { type: 'button', class: 'linkish trace-link mono', title: 'Open the trace of ' + planId,
      dataset: { plan: planId }, text: planId, onclick: function () { openTrace(planId); } });
  }

  function loadStream() {
    var body = $('stream-body');
    return api('GET', streamQuery()).then(function (r) {
      var errNode = $('stream-error');
      clear(body);
      if (!r.ok) {
        errNode.textContent = 'Evidence stream unavailable: ' + r.error.detail + ' (HTTP ' + r.status + ')';
        errNode.hidden = false;
        body.appendChild(el('tr', { class: 'empty' }, el('td', { colspan: '7', text: 'No events to show.' })));
        stream.next = null;
        updatePager(0);
        return;
      }
      errNode.hidden = true;
      var items = asArray(r.data && r.data.items);
      stream.next = r.data && r.data.next_cursor ? String(r.data.next_cursor) : null;
      if (items.length === 0) {
        body.appendChild(el('tr', { class: 'empty' }, el('td', { colspan: '7', text: 'No events match these filters.' })));
      }
      items.forEach(function (it) {
        it = it || {};
        var detailRow = el('tr', { class: 'detail-row', hidden: true },
          el('td', { colspan: '7' }, el('pre', { text: JSON.stringify(it.record === undefined ? null : it.record, null, 2) })));
        var recBtn = el('button', { type: 'button', class: 'linkish mono', 'aria-expanded': 'false',
          title: 'Show the stored record', text: show(it.record_id),
          onclick: function () {
            var open = detailRow.hidden;
            detailRow.hidden = !open;
            recBtn.setAttribute('aria-expanded', open ? 'true' : 'false');
          } });
        body.appendChild(el('tr', { class: 'event', dataset: { kind: it.kind || '', plan: it.plan_id || '' } },
          el('td', { class: 'num', 'data-label': '#', text: show(it.position) }),
          el('td', { class: 'nowrap', 'data-label': 'Time', text: fmtTime(it.created_at) }),
          el('td', { 'data-label': 'Kind' }, el('span', { class: 'kind kind-' + (it.kind || 'unknown'), text: KIND_LABELS[it.kind] || show(it.kind) })),
          el('td', { 'data-label': 'Record' }, recBtn),
          el('td', { 'data-label': 'Plan' }, planButton(it.plan_id)),
          el('td', { 'data-label': 'Provider', text: show(it.provider) }),
          el('td', { 'data-label': 'Actor', text: show(it.actor) })));
        body.appendChild(detailRow);
      });
      updatePager(items.length);
    }).then(function () {
      body.dataset.loads = String(Number(body.dataset.loads || 0) + 1);
    });
  }

  function updatePager(count) {
    $('page-newer').disabled = stream.back.length === 0;
    $('page-older').disabled = !stream.next;
    $('page-info').textContent = 'Page ' + (stream.back.length + 1) + ' · ' + count + ' event' + (count === 1 ? '' : 's');
  }

  function applyFilters(ev) {
    if (ev) ev.preventDefault();
    stream.filters.kind = $('filter-kind').value;
    stream.filters.plan_id = $('filter-plan').value.trim();
    stream.filters.provider = $('filter-provider').value.trim().toLowerCase();
    stream.limit = Number($('filter-limit').value) || 25;
    stream.cursor = '';
    stream.back = [];
    return loadStream();
  }

  /* ---------------------------------------------------------------- trace */

  function traceSummary(it) {
    var rec = it.record && typeof it.record === 'object' ? it.record : {};
    switch (it.kind) {
      case 'recovery_escalation_plan':
        return 'Alert ' + show(rec.alert_level) + '; ' + show(rec.escalation_count) + ' route(s) to ' +
          show(rec.selected_providers) + '; SLO ' + show(rec.recovery_slo_minutes) + ' min';
      case 'connector_delivery': {
        var ok = rec.delivery_success;
        return show(rec.provider || it.provider) + ': ' + (ok === true ? 'delivered' : ok === false ? 'failed' : 'outcome unknown') +
          '; status ' + show(rec.status_codes !== undefined ? rec.status_codes : rec.status_code) +
          '; attempts ' + show(rec.attempt_count);
      }
      case 'recovery_escalation_ack':
        return show(rec.provider || it.provider) + ' ' + show(rec.acknowledgement_state) + ' by ' +
          show(rec.acknowledged_by) + (rec.external_ref ? ' (' + rec.external_ref + ')' : '');
      case 'recovery_escalation_retry_plan': {
        var ds = asArray(rec.retry_decisions).filter(function (d) { return d && (!d.plan_id || d.plan_id === it.plan_id || !it.plan_id); });
        if (ds.length === 0) return 'Retry plan; alert ' + show(rec.alert_level);
        return ds.map(function (d) { return show(d.provider) + ': ' + show(d.action) + ' (' + show(d.reason) + ')'; }).join('; ');
      }
      case 'executive_report_schedule_run': {
        var st = get(rec, ['executive_report', 'executive_summary', 'status']);
        return 'Report status ' + show(isNil(st) ? rec.alert_level : st) + '; window ' +
          fmtTime(get(rec, ['schedule', 'window_start'])) + ' – ' + fmtTime(get(rec, ['schedule', 'window_end']));
      }
      default:
        return show(it.kind);
    }
  }

  function openTrace(planId) {
    var section = $('trace-section');
    var list = $('trace-list');
    var errNode = $('trace-error');
    section.hidden = false;
    $('trace-plan-id').textContent = planId;
    errNode.hidden = true;
    clear(list);
    list.appendChild(el('li', { class: 'muted', text: 'Loading trace…' }));
    $('trace-title').focus();
    section.scrollIntoView({ block: 'start' });
    return api('GET', P + '/recovery-escalations/' + encodeURIComponent(planId) + '/trace').then(function (r) {
      if ($('trace-plan-id').textContent !== planId) return;
      clear(list);
      if (!r.ok) {
        errNode.textContent = 'Trace unavailable: ' + r.error.detail + ' (HTTP ' + r.status + ')';
        errNode.hidden = false;
        return;
      }
      var items = asArray(r.data && r.data.items);
      if (items.length === 0) list.appendChild(el('li', { class: 'muted', text: 'The stream holds nothing about this plan.' }));
      items.forEach(function (it, i) {
        it = it || {};
        list.appendChild(el('li', { class: 'trace-item', dataset: { kind: it.kind || '' } },
          el('div', { class: 'trace-step', 'aria-hidden': 'true', text: String(i + 1) }),
          el('div', { class: 'trace-body' },
            el('div', { class: 'trace-line' },
              el('span', { class: 'kind kind-' + (it.kind || 'unknown'), text: KIND_LABELS[it.kind] || show(it.kind) }),
              el('code', { class: 'mono', text: show(it.record_id) }),
              el('span', { class: 'muted small', text: fmtTime(it.created_at) + ' UTC · #' + show(it.position) + (it.actor ? ' · ' + it.actor : '') })),
            el('p', { class: 'trace-summary', text: traceSummary(it) }),
            jsonDetails('Record (JSON)', it.record === undefined ? null : it.record))));
      });
    }).then(function () {
      list.dataset.loads = String(Number(list.dataset.loads || 0) + 1);
    });
  }

  /* -------------------------------------------------------------- refresh */

  function refreshAll() {
    var parts = [loadDashboard(), loadStream(), loadRecentPlans(), loadLatestReport()].map(function (p) {
      return p.catch(function (e) { if (window.console) console.error('console refresh:', e); });
    });
    return Promise.all(parts).then(function () {
      // A counter that tests (and scripts) can wait on.
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
    });
  }

  /* ----------------------------------------------------------------- wire */

  function init() {
    try {
      var t = sessionStorage.getItem(TOKEN_KEY);
      if (t) { $('token').value = t; $('token-status').textContent = 'Token in use for this tab.'; }
      var o = sessionStorage.getItem(OPERATOR_KEY);
      if (o) $('operator').value = o;
    } catch (e) { /* storage disabled: work without it */ }

    $('operator').addEventListener('change', function () {
      try { sessionStorage.setItem(OPERATOR_KEY, $('operator').value.trim()); } catch (e) { /* ignore */ }
    });
    $('session-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var v = $('token').value.trim();
      try {
        if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
        sessionStorage.setItem(OPERATOR_KEY, $('operator').value.trim());
      } catch (e) { /* ignore */ }
      $('token-status').textContent = v ? 'Token in use for this tab.' : 'No token: sandbox access.';
      hideAuth();
      refreshAll();
      probeVerify();
    });
    $('token-clear').addEventListener('click', function () {
      $('token').value = '';
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
      $('token-status').textContent = 'Token cleared.';
      hideAuth();
      refreshAll();
    });

    $('auth-banner-close').addEventListener('click', function () {
      hideAuth();
      $('token').focus();
    });
    $('dash-refresh').addEventListener('click', function () { refreshAll(); });
    $('verify-btn').addEventListener('click', runVerify);

    $('plan-add-route').addEventListener('click', function () {
      var row = addRoute();
      row.querySelector('input').focus();
    });
    addRoute();

    wireForm($('form-plan'), buildPlan, function (body) {
      return api('POST', P + '/recovery-escalation-plan', body);
    }, function (r, node) {
      var plan = r.data && r.data.plan;
      rememberPlan(plan, true);
      renderPlanPickers();
      if (plan && plan.plan_id) selectPlanEverywhere(plan.plan_id);
      resultOk(node, 'Plan recorded:', plan && plan.plan_id,
        '· alert ' + show(plan && plan.alert_level) + ' · providers ' + show(plan && plan.selected_providers) +
        (r.replayed ? ' (replayed)' : ''));
    });

    $('delivery-plan').addEventListener('change', function () { fillProviders($('delivery-plan'), $('delivery-provider')); });
    $('ack-plan').addEventListener('change', function () { fillProviders($('ack-plan'), $('ack-provider')); });
    $('delivery-success').addEventListener('change', function () {
      var sc = $('delivery-status');
      if (sc.dataset.touched) return;
      sc.value = $('delivery-success').checked ? '200' : '503';
    });
    $('delivery-status').addEventListener('input', function () { $('delivery-status').dataset.touched = '1'; });

    wireForm($('form-delivery'), function (resultNode) {
      var planId = $('delivery-plan').value;
      if (!planId) { clientError(resultNode, 'choose a plan first (record one above)'); return null; }
      var nums = collectNumbers([['delivery-status', 'status_code'], ['delivery-attempts', 'attempt_count']], resultNode);
      if (nums === null) return null;
      var body = Object.assign({ provider: $('delivery-provider').value, success: $('delivery-success').checked }, nums);
      var e = textField($('delivery-error'));
      if (e !== undefined) body.error = e;
      return { planId: planId, body: body };
    }, function (req) {
      return api('POST', P + '/recovery-escalations/' + encodeURIComponent(req.planId) + '/delivery-attempts', req.body);
    }, function (r, node) {
      var d = r.data && r.data.delivery;
      resultOk(node, 'Delivery recorded:', d && d.delivery_id,
        '· ' + (d && d.delivery_success === true ? 'delivered' : d && d.delivery_success === false ? 'failed' : '') +
        (d && d.status_codes !== undefined ? ' · status ' + show(d.status_codes) : ''));
    });

    wireForm($('form-ack'), function (resultNode) {
      var planId = $('ack-plan').value;
      if (!planId) { clientError(resultNode, 'choose a plan first (record one above)'); return null; }
      var body = {
        provider: $('ack-provider').value,
        acknowledgement_state: $('ack-state').value
      };
      [['ack-by', 'acknowledged_by'], ['ack-ref', 'external_ref'], ['ack-notes', 'notes'], ['ack-reason', 'escalation_reason']]
        .forEach(function (f) { var v = textField($(f[0])); if (v !== undefined) body[f[1]] = v; });
      return { planId: planId, body: body };
    }, function (req) {
      return api('POST', P + '/recovery-escalations/' + encodeURIComponent(req.planId) + '/acknowledgements', req.body);
    }, function (r, node) {
      var a = r.data && r.data.acknowledgement;
      resultOk(node, 'Acknowledgement recorded:', a && a.acknowledgement_id,
        '· ' + show(a && a.provider) + ' ' + show(a && a.acknowledgement_state));
    });

    $('retry-delay').addEventListener('input', function () { $('retry-delay').dataset.touched = '1'; });
    $('retry-immediate').addEventListener('change', function () {
      var d = $('retry-delay');
      if (!d.dataset.touched) d.value = $('retry-immediate').checked ? '0' : '15';
    });

    wireForm($('form-retry'), function (resultNode) {
      var policy = collectNumbers([['retry-max', 'max_retry_attempts'], ['retry-delay', 'retry_delay_minutes'],
        ['retry-multiplier', 'backoff_multiplier']], resultNode);
      if (policy === null) return null;
      policy.allow_immediate_retry = $('retry-immediate').checked;
      var body = { generated_by: operator(), retry_policy: policy };
      if ($('retry-plan').value) body.plan_id = $('retry-plan').value;
      return body;
    }, function (body) {
      return api('POST', P + '/recovery-escalations/retry-plan', body);
    }, function (r, node) {
      var p = r.data && r.data.plan;
      resultOk(node, 'Retry plan recorded:', p && p.retry_plan_id,
        '· ' + show(p && p.decision_count) + ' decision(s): ' + show(p && p.retryable_count) + ' retry, ' +
        show(p && p.waiting_count) + ' wait, ' + show(p && p.suppressed_count) + ' suppressed');
    });

    wireForm($('form-report'), function (resultNode) {
      var nums = collectNumbers([['report-slo', 'recovery_slo_minutes'], ['report-interval', 'interval_minutes']], resultNode);
      if (nums === null) return null;
      var schedule = { enabled: $('report-enabled').checked };
      if (nums.interval_minutes !== undefined) schedule.interval_minutes = nums.interval_minutes;
      var cadence = textField($('report-cadence'));
      if (cadence !== undefined) schedule.cadence = cadence;
      var body = { generated_by: operator(), schedule: schedule };
      if (nums.recovery_slo_minutes !== undefined) body.recovery_slo_minutes = nums.recovery_slo_minutes;
      return body;
    }, function (body) {
      return api('POST', P + '/recovery-executive-report/schedule-run', body);
    }, function (r, node) {
      var run = r.data && r.data.run;
      var existing = r.status === 200;
      resultOk(node, existing ? 'Existing run for this window:' : 'Report run created:', run && run.run_id,
        '· status ' + show(get(run, ['executive_report', 'executive_summary', 'status'])));
      renderReport(run, existing ? 'returned the stored run of this window' : 'new run');
    });

    $('report-interval').addEventListener('input', function () {
      var n = numberField($('report-interval'));
      $('report-cadence').placeholder = 'every_' + (typeof n === 'number' && !isNaN(n) ? n : 1440) + '_minutes';
    });

    $('stream-filters').addEventListener('submit', applyFilters);
    $('filter-reset').addEventListener('click', function () {
      $('filter-kind').value = '';
      $('filter-plan').value = '';
      $('filter-provider').value = '';
      $('filter-limit').value = '25';
      applyFilters();
    });
    $('page-older').addEventListener('click', function () {
      if (!stream.next) return;
      stream.back.push(stream.cursor);
      stream.cursor = stream.next;
      loadStream();
    });
    $('page-newer').addEventListener('click', function () {
      if (stream.back.length === 0) return;
      stream.cursor = stream.back.pop();
      loadStream();
    });
    $('trace-close').addEventListener('click', function () {
      $('trace-section').hidden = true;
      $('trace-plan-id').textContent = '';
      $('stream-title').scrollIntoView({ block: 'start' });
    });

    probeVerify();
    refreshAll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
