// pgwarden approver page: polls the pending and recently decided holds, the
// approved plans and the trash, approves and denies holds, approves plans, and
// restores and purges trash items with the CSRF token of this sign-in. Text from the server only ever goes
// into textContent, never into HTML.
'use strict';
(function () {
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var me = document.querySelector('meta[name="approver"]').content;
  var POLL_MS = 2000;
  var FOLD_LINES = 6;
  var FOLD_CHARS = 400;
  var cards = new Map(); // hold id -> { card, deadline }
  var linked = false;
  var KEYWORDS = new Set(('select from where and or not null is in as on join left right inner outer ' +
    'full cross using group by order having limit offset insert into values update set delete ' +
    'drop table truncate alter add column rename to create index view schema database function ' +
    'procedure trigger cascade restrict if exists returning with recursive union all distinct ' +
    'case when then else end begin commit rollback grant revoke do language type extension ' +
    'role owned vacuum full cluster reindex copy merge matched true false like between only')
    .split(' '));

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // SQL into spans: comments, strings, quoted identifiers, numbers, keywords.
  function highlight(sql, into) {
    var re = /(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_$]*)|([\s\S])/g;
    var m, plain = '';
    function flush() { if (plain) { into.appendChild(document.createTextNode(plain)); plain = ''; } }
    while ((m = re.exec(sql)) !== null) {
      var cls = m[1] ? 'c' : m[2] ? 's' : m[3] ? 'i' : m[4] ? 'n' :
        (m[5] && KEYWORDS.has(m[5].toLowerCase())) ? 'k' : null;
      if (cls) { flush(); into.appendChild(el('span', cls, m[0])); } else { plain += m[0]; }
    }
    flush();
  }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function fact(dl, name, value) {
    if (value === undefined || value === null) return null;
    dl.appendChild(el('dt', null, name));
    var dd = el('dd', null, value);
    dl.appendChild(dd);
    return dd;
  }

  // Impact figures, when the hold carries them (a sentence or a set of figures).
  function impactText(impact) {
    if (impact === undefined || impact === null) return null;
    if (typeof impact !== 'object') return String(impact);
    return Object.keys(impact).map(function (k) {
      var v = impact[k];
      return k + ': ' + (typeof v === 'object' ? JSON.stringify(v) : v);
    }).join(', ');
  }

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (r.status === 401) { window.location.href = '/ui'; }
        if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
        return j;
      });
    });
  }

  function buildCard(h, fetchedAt) {
    var card = el('article', 'hold');
    card.id = 'hold-' + h.id;
    card.dataset.holdId = h.id;
    var head = el('div', 'hold-head');
    head.appendChild(el('span', 'hold-id', '#' + h.id));
    if (h.rule) head.appendChild(el('span', 'badge rule', h.rule));
    (h.classes || []).forEach(function (c) { head.appendChild(el('span', 'badge', c)); });
    card.appendChild(head);

    var pre = el('pre', 'sql');
    highlight(h.sql, pre);
    card.appendChild(pre);
    var lines = h.sql.split('\n').length;
    if (lines > FOLD_LINES || h.sql.length > FOLD_CHARS) {
      pre.classList.add('folded');
      var more = el('button', 'unfold', 'Show all (' + lines + ' lines, ' + h.sql.length + ' characters)');
      more.type = 'button';
      more.addEventListener('click', function () {
        var folded = pre.classList.toggle('folded');
        more.textContent = folded ? 'Show all (' + lines + ' lines, ' + h.sql.length + ' characters)' : 'Fold';
      });
      card.appendChild(more);
    }

    var dl = el('dl', 'facts');
    fact(dl, 'Who', h.user + (h.application ? ' · ' + h.application : '') + (h.client ? ' · from ' + h.client : ''));
    fact(dl, 'Where', 'target ' + h.target + ' · database ' + h.database);
    var age = fact(dl, 'Held', '');
    var left = fact(dl, 'Time left', '');
    left.classList.add('left');
    fact(dl, 'Impact', impactText(h.impact));
    fact(dl, 'Would destroy', h.blast === undefined ? null : h.blast);
    card.appendChild(dl);

    var actions = el('div', 'actions');
    var approve = el('button', 'approve', 'Approve');
    approve.type = 'button';
    var reason = el('input', 'reason');
    reason.type = 'text';
    reason.placeholder = 'Reason for denying (optional)';
    reason.maxLength = 500;
    reason.setAttribute('aria-label', 'Reason for denying hold #' + h.id);
    var deny = el('button', 'deny', 'Deny');
    deny.type = 'button';
    actions.appendChild(approve);
    actions.appendChild(reason);
    actions.appendChild(deny);
    card.appendChild(actions);
    if (h.user === me) {
      approve.disabled = true;
      card.appendChild(el('p', 'note', 'Your own statement: another approver has to approve it.'));
    }
    var msg = el('p', 'msg');
    card.appendChild(msg);

    function act(what, body) {
      approve.disabled = deny.disabled = true;
      msg.className = 'msg';
      msg.textContent = what === 'approve' ? 'Approving…' : 'Denying…';
      post('/ui/api/holds/' + h.id + '/' + what, body).then(function () {
        msg.textContent = what === 'approve' ? 'Approved.' : 'Denied.';
        refresh();
      }, function (e) {
        msg.className = 'msg error';
        msg.textContent = e.message;
        approve.disabled = h.user === me;
        deny.disabled = false;
      });
    }
    approve.addEventListener('click', function () { act('approve'); });
    deny.addEventListener('click', function () { act('deny', { reason: reason.value }); });

    var entry = { card: card, age: age, left: left, created: 0, deadline: 0 };
    timing(entry, h, fetchedAt);
    return entry;
  }

  function timing(entry, h, fetchedAt) {
    entry.created = fetchedAt - h.age_seconds * 1000;
    entry.deadline = entry.created + h.timeout_seconds * 1000;
  }

  function tick() {
    var now = Date.now();
    cards.forEach(function (e) {
      e.age.textContent = duration((now - e.created) / 1000) + ' ago';
      var left = (e.deadline - now) / 1000;
      e.left.textContent = left > 0 ? duration(left) : 'expiring';
      e.left.classList.toggle('soon', left < 60);
    });
  }

  function renderPending(list, fetchedAt) {
    var box = document.getElementById('pending');
    var seen = new Set();
    list.forEach(function (h) {
      seen.add(h.id);
      var e = cards.get(h.id);
      if (!e) {
        e = buildCard(h, fetchedAt);
        cards.set(h.id, e);
        box.appendChild(e.card);
      } else {
        timing(e, h, fetchedAt);
      }
    });
    cards.forEach(function (e, id) {
      if (!seen.has(id)) { e.card.remove(); cards.delete(id); }
    });
    // A notification links to #hold-ID: show that hold once it is on the page.
    if (!linked && window.location.hash) {
      var target = document.getElementById(window.location.hash.slice(1));
      if (target && target.classList.contains('hold')) {
        linked = true;
        target.classList.add('linked');
        target.scrollIntoView({ block: 'start' });
      }
    }
    document.getElementById('pending-count').textContent = String(list.length);
    document.getElementById('no-pending').hidden = list.length > 0;
    tick();
  }

  var VERDICT = { approve: 'approved', deny: 'denied', expire: 'expired', withdraw: 'withdrawn' };

  function renderRecent(list) {
    var ol = document.getElementById('recent');
    ol.textContent = '';
    var now = Date.now() / 1000;
    list.forEach(function (ev) {
      var li = el('li');
      li.dataset.holdId = ev.hold.id;
      li.appendChild(el('span', 'verdict ' + ev.kind, VERDICT[ev.kind] || ev.kind));
      var text = '#' + ev.hold.id;
      if (ev.approver) text += ' by ' + ev.approver;
      text += ' · ' + duration(now - ev.at) + ' ago · ' + ev.hold.user + ' on ' + ev.hold.target + ' ';
      li.appendChild(el('span', null, text));
      var sql = ev.hold.sql.length > 120 ? ev.hold.sql.slice(0, 117) + '…' : ev.hold.sql;
      li.appendChild(el('code', null, sql));
      if (ev.reason) li.appendChild(el('div', 'note', 'Reason: ' + ev.reason));
      ol.appendChild(li);
    });
    document.getElementById('no-recent').hidden = list.length > 0;
  }

  function when(unix) {
    var d = new Date(unix * 1000);
    return d.toLocaleString();
  }

  var planCards = new Map(); // plan id -> { card, window, runs }

  function buildPlan(p) {
    var card = el('article', 'plan');
    card.dataset.planId = p.id;
    var head = el('div', 'hold-head');
    head.appendChild(el('span', 'hold-id', 'plan ' + p.id));
    head.appendChild(el('span', 'badge', 'target ' + p.target));
    card.appendChild(head);
    var dl = el('dl', 'facts');
    fact(dl, 'For', 'user ' + (p.user || 'any') + ' · application ' + (p.application || 'any'));
    fact(dl, 'Approved by', p.approver);
    var windowDd = fact(dl, 'Window', '');
    card.appendChild(dl);
    var runs = el('ol', 'plan-statements');
    card.appendChild(runs);
    var actions = el('div', 'actions');
    var revoke = el('button', 'deny revoke', 'Revoke');
    revoke.type = 'button';
    var msg = el('p', 'msg');
    revoke.addEventListener('click', function () {
      revoke.disabled = true;
      msg.className = 'msg';
      msg.textContent = 'Revoking…';
      post('/ui/api/plans/' + encodeURIComponent(p.id) + '/revoke').then(function () {
        msg.textContent = 'Revoked.';
        refresh();
      }, function (e) {
        msg.className = 'msg error';
        msg.textContent = e.message;
        revoke.disabled = false;
      });
    });
    actions.appendChild(revoke);
    card.appendChild(actions);
    card.appendChild(msg);
    return { card: card, window: windowDd, runs: runs };
  }

  function renderPlans(list, now) {
    var box = document.getElementById('plans');
    var seen = new Set();
    list.forEach(function (p) {
      seen.add(p.id);
      var e = planCards.get(p.id);
      if (!e) {
        e = buildPlan(p);
        planCards.set(p.id, e);
        box.appendChild(e.card);
      }
      e.window.textContent = when(p.not_before) + ' – ' + when(p.not_after) +
        ' (' + (p.not_after > now ? duration(p.not_after - now) + ' left' : 'ended') + ')';
      e.runs.textContent = '';
      Object.keys(p.statements).forEach(function (f) {
        var c = p.statements[f];
        e.runs.appendChild(el('li', null, f + ': used ' + c[1] + ' of ' + c[0]));
      });
    });
    planCards.forEach(function (e, id) {
      if (!seen.has(id)) { e.card.remove(); planCards.delete(id); }
    });
    document.getElementById('plan-count').textContent = String(list.length);
    document.getElementById('no-plans').hidden = list.length > 0;
  }

  // The plan being approved: what it would release, read from the pasted JSON.
  function previewPlan() {
    var ol = document.getElementById('plan-preview');
    ol.textContent = '';
    var text = document.getElementById('plan-text').value.trim();
    if (!text) return null;
    var plan;
    try { plan = JSON.parse(text); } catch (e) {
      ol.appendChild(el('li', 'error', 'Not JSON: ' + e.message));
      return null;
    }
    (plan.statements || []).forEach(function (s) {
      var li = el('li');
      li.appendChild(el('span', 'verdict ' + (s.verdict === 'hold' ? 'approve' : 'expire'),
        s.verdict === 'hold' ? 'released' : s.verdict));
      li.appendChild(el('span', null, ' ×' + s.count + ' '));
      li.appendChild(el('code', null, s.sql));
      ol.appendChild(li);
    });
    var user = document.getElementById('plan-user');
    var app = document.getElementById('plan-application');
    user.placeholder = plan.user ? plan.user + ' (the plan\'s)' : 'the plan\'s';
    app.placeholder = plan.application ? plan.application + ' (the plan\'s; * for any)' : 'any';
    return plan;
  }

  function setupPlanForm() {
    var form = document.getElementById('plan-form');
    var text = document.getElementById('plan-text');
    var file = document.getElementById('plan-file');
    var msg = document.getElementById('plan-msg');
    text.addEventListener('input', previewPlan);
    file.addEventListener('change', function () {
      if (!file.files.length) return;
      file.files[0].text().then(function (t) { text.value = t; previewPlan(); });
    });
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var plan = previewPlan();
      msg.className = 'msg';
      if (!plan) { msg.className = 'msg error'; msg.textContent = 'Paste or choose a plan file first.'; return; }
      var opt = function (id) { var v = document.getElementById(id).value.trim(); return v === '' ? null : v; };
      var button = form.querySelector('button[type=submit]');
      button.disabled = true;
      msg.textContent = 'Approving…';
      post('/ui/api/plans', {
        plan: plan, window: opt('plan-window') || '2h', user: opt('plan-user'), application: opt('plan-application')
      }).then(function (r) {
        msg.textContent = 'Approved plan ' + r.id + ' (' + r.statements + ' statements).';
        text.value = '';
        previewPlan();
        refresh();
      }, function (e) {
        msg.className = 'msg error';
        msg.textContent = e.message;
      }).then(function () { button.disabled = false; });
    });
  }

  function status(text, cls) {
    var s = document.getElementById('status');
    s.textContent = text;
    s.className = 'status ' + cls;
  }

  var inFlight = false;
  function refresh() {
    if (inFlight) return;
    inFlight = true;
    fetch('/ui/api/holds', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { window.location.href = '/ui'; throw new Error('signed out'); }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }).then(function (data) {
      renderPending(data.pending, Date.now());
      renderRecent(data.recent);
      renderPlans(data.plans || [], data.now || Date.now() / 1000);
      status('live', 'live');
    }).catch(function (e) {
      status('connection lost, retrying', 'lost');
      document.getElementById('status').title = String(e);
    }).then(function () { inFlight = false; });
  }

  // --- The trash: what was dropped, per target, with Restore and Purge. ---
  var TRASH_POLL_MS = 5000;
  var trashCards = new Map(); // target + '/' + id -> { card }
  var trashBoxes = new Map(); // target -> box

  function bytes(n) {
    if (n < 1024) return n + ' B';
    var units = ['kB', 'MB', 'GB', 'TB'];
    var v = n, u = -1;
    do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
    return v.toFixed(v < 10 ? 1 : 0) + ' ' + units[u];
  }

  function since(seconds) {
    var s = Math.abs(seconds);
    if (s >= 2 * 86400) return Math.floor(s / 86400) + ' days ' + Math.floor((s % 86400) / 3600) + ' h';
    return duration(s);
  }

  function stamp(iso) {
    var t = Date.parse(iso);
    return isNaN(t) ? { text: iso, at: null } : { text: new Date(t).toLocaleString(), at: t / 1000 };
  }

  function rowsText(it) {
    if (it.rows === undefined || it.rows === null) return null;
    var n = it.rows.toLocaleString('en');
    return (it.rows_capped ? 'more than ' + n : n) + (it.rows === 1 ? ' row' : ' rows');
  }

  function buildTrashItem(target, it) {
    var card = el('article', 'trash-item');
    card.id = 'trash-' + target + '-' + it.id;
    card.dataset.itemId = it.id;
    card.dataset.target = target;
    var head = el('div', 'hold-head');
    head.appendChild(el('span', 'hold-id', '#' + it.id));
    head.appendChild(el('code', 'original', it.original));
    head.appendChild(el('span', 'badge', it.kind));
    if (it.expired) head.appendChild(el('span', 'badge expired', 'expired'));
    card.appendChild(head);

    var now = Date.now() / 1000;
    var dl = el('dl', 'facts');
    var at = stamp(it.trashed_at);
    fact(dl, 'Dropped', at.text + (at.at ? ' (' + since(now - at.at) + ' ago)' : '') + ' by ' + it.trashed_by);
    var size = bytes(it.size_bytes);
    var rows = rowsText(it);
    fact(dl, 'Size', rows ? rows + ' · ' + size : size);
    if (it.expires_at) {
      var ex = stamp(it.expires_at);
      fact(dl, 'Expires', ex.text + (ex.at ? (ex.at > now ? ' (in ' + since(ex.at - now) + ')' :
        ' (expired: purged at the next retention run)') : ''));
    } else {
      fact(dl, 'Expires', 'never');
    }
    var stmt = fact(dl, 'Statement', '');
    stmt.textContent = '';
    stmt.appendChild(el('code', null, it.statement));
    fact(dl, 'Kept in', 'schema ' + it.trash_schema);
    card.appendChild(dl);

    var actions = el('div', 'actions');
    var name = el('input', 'restore-as');
    name.type = 'text';
    name.placeholder = 'New name (optional)';
    name.maxLength = 63;
    name.setAttribute('aria-label', 'Restore trash item #' + it.id + ' under a new name');
    var restore = el('button', 'approve restore', 'Restore');
    restore.type = 'button';
    var purge = el('button', 'deny purge', 'Purge');
    purge.type = 'button';
    actions.appendChild(name);
    actions.appendChild(restore);
    actions.appendChild(purge);
    card.appendChild(actions);
    var msg = el('p', 'msg');
    msg.setAttribute('role', 'status');
    card.appendChild(msg);

    var base = '/ui/api/trash/' + encodeURIComponent(it.id) + '/';
    var armed = null;
    function disarm() {
      if (armed) { clearTimeout(armed); armed = null; }
      purge.textContent = 'Purge';
      purge.classList.remove('armed');
    }
    function busy(b) { restore.disabled = purge.disabled = name.disabled = b; }
    restore.addEventListener('click', function () {
      disarm();
      busy(true);
      msg.className = 'msg';
      var as = name.value.trim();
      msg.textContent = 'Restoring…';
      post(base + 'restore', as ? { as: as } : {}).then(function (r) {
        card.classList.add('done');
        msg.textContent = 'Restored as ' + r.as + '.';
        setTimeout(refreshTrash, 1500);
      }, function (e) {
        msg.className = 'msg error';
        msg.textContent = e.message;
        busy(false);
      });
    });
    purge.addEventListener('click', function () {
      if (!armed) {
        // Purging cannot be undone: the first click asks, the second purges.
        purge.textContent = 'Really purge? It cannot be undone';
        purge.classList.add('armed');
        armed = setTimeout(disarm, 8000);
        return;
      }
      disarm();
      busy(true);
      msg.className = 'msg';
      msg.textContent = 'Purging…';
      post(base + 'purge').then(function () {
        card.classList.add('done');
        msg.textContent = 'Purged: ' + it.original + ' is gone for good.';
        setTimeout(refreshTrash, 1500);
      }, function (e) {
        msg.className = 'msg error';
        msg.textContent = e.message;
        busy(false);
      });
    });
    return { card: card };
  }

  function renderTrash(data) {
    var box = document.getElementById('trash');
    var none = document.getElementById('no-trash');
    var seen = new Set();
    var count = 0;
    (data.targets || []).forEach(function (t) {
      var tbox = trashBoxes.get(t.target);
      if (!tbox) {
        tbox = el('div', 'trash-target');
        tbox.dataset.target = t.target;
        tbox.appendChild(el('h3', null, 'target ' + t.target));
        trashBoxes.set(t.target, tbox);
        box.appendChild(tbox);
      }
      tbox.hidden = t.items.length === 0;
      t.items.forEach(function (it) {
        var key = t.target + '/' + it.id;
        seen.add(key);
        count++;
        if (!trashCards.has(key)) {
          var e = buildTrashItem(t.target, it);
          trashCards.set(key, e);
          tbox.appendChild(e.card);
        }
      });
    });
    trashCards.forEach(function (e, key) {
      if (!seen.has(key)) { e.card.remove(); trashCards.delete(key); }
    });
    document.getElementById('trash-count').textContent = String(count);
    none.textContent = data.configured ? 'Nothing is in the trash.' :
      'This proxy has no [trash] section, so it cannot show or restore the trash.';
    none.hidden = count > 0;
  }

  var trashInFlight = false;
  function refreshTrash() {
    if (trashInFlight) return;
    trashInFlight = true;
    var err = document.getElementById('trash-error');
    fetch('/ui/api/trash', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { window.location.href = '/ui'; throw new Error('signed out'); }
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
        return j;
      });
    }).then(function (data) {
      renderTrash(data);
      err.hidden = true;
    }).catch(function (e) {
      err.textContent = 'The trash could not be read: ' + e.message;
      err.hidden = false;
    }).then(function () { trashInFlight = false; });
  }

  setupPlanForm();
  refresh();
  refreshTrash();
  setInterval(refreshTrash, TRASH_POLL_MS);
  setInterval(refresh, POLL_MS);
  setInterval(tick, 1000);
})();
