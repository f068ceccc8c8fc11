// vpnaas dashboard: the whole script. Live updates from the change stream (the parts
// marked data-live are re-read from the server within a second of a change), forms sent
// as JSON like any API client's (the API's error shown as it answered), and fields
// checked as one types by the API's own validators.
(function () {
  'use strict';
  var state = document.getElementById('live-state');
  // At most one re-read in flight: changes that arrive meanwhile ask for one more after
  // it, so a busy project costs one page read at a time, not one per change.
  var timer = null;
  var busy = false;
  var again = false;

  function say(text) { if (state) { state.textContent = text; } }

  function refresh() {
    timer = null;
    busy = true;
    fetch(location.href, { credentials: 'same-origin' })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, 'text/html');
        document.querySelectorAll('[data-live]').forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next && !old.contains(document.activeElement)) { old.replaceWith(next); }
        });
        document.body.dataset.refreshed = String(Date.now());
      })
      .finally(function () {
        busy = false;
        if (again) { again = false; soon(); }
      });
  }

  function soon() {
    if (busy) { again = true; } else if (!timer) { timer = setTimeout(refresh, 100); }
  }

  var stream = null;
  function listen() {
    if (!state || !window.EventSource || stream) { return; }
    stream = new EventSource('/dashboard/stream');
    // What changed between this page's render and the subscription (or while the
    // stream was reconnecting) was never told: read the page again once it listens.
    stream.addEventListener('ready', function () { say('live'); soon(); });
    stream.addEventListener('change', soon);
    stream.addEventListener('resync', soon);
    stream.onerror = function () { say('reconnecting…'); };
  }
  // A page left behind must give its connection back: browsers allow a few per server,
  // and a stream never ends by itself.
  window.addEventListener('pagehide', function () {
    if (stream) { stream.close(); stream = null; }
  });
  window.addEventListener('pageshow', listen);
  listen();

  function showError(form, text) {
    var box = form.querySelector('.error');
    if (box) { box.textContent = text; } else { alert(text); }
  }

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.hasAttribute('data-json')) { return; }
    event.preventDefault();
    var body = {};
    new FormData(form).forEach(function (value, key) { body[key] = value; });
    showError(form, '');
    fetch(form.action, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (answer) {
        if (answer.redirect) { location.assign(answer.redirect); return; }
        var fault = answer.NeutronError || {};
        showError(form, (fault.type || ('HTTP ' + r.status)) + ': ' + (fault.message || ''));
      });
    }).catch(function (e) { showError(form, String(e)); });
  });

  var checks = {};
  document.addEventListener('input', function (event) {
    var input = event.target;
    var kind = input.getAttribute && input.getAttribute('data-check');
    if (!kind) { return; }
    clearTimeout(checks[input.name]);
    checks[input.name] = setTimeout(function () {
      var q = new URLSearchParams({ kind: kind, field: input.name, value: input.value });
      fetch('/dashboard/check?' + q, { credentials: 'same-origin' })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          var slot = input.parentElement.nextElementSibling;
          input.setAttribute('aria-invalid', answer.error ? 'true' : 'false');
          if (slot && slot.classList.contains('field-error')) { slot.textContent = answer.error || ''; }
        });
    }, 250);
  });
})();
