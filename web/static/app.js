// Homelab's own script: the little htmx does not do. Kept tiny on purpose.
(function () {
  "use strict";
  // Dismiss buttons on toasts; delegated, since toasts arrive by htmx swaps and live events.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest(".toast-close") : null;
    if (btn) btn.parentElement.remove();
  });
  // Non-error toasts leave by themselves after a while; errors stay until dismissed.
  document.addEventListener("htmx:load", function (e) {
    var el = e.detail.elt;
    if (el.classList && el.classList.contains("toast") && !el.classList.contains("toast-error")) {
      setTimeout(function () { el.remove(); }, 6000);
    }
  });
  // When the session ends (signed out here or elsewhere, or timed out), the live-event stream
  // says so last: close it ourselves, so the browser sees no broken connection and does not
  // retry, and go to the sign-in page, since nothing on this page works any more.
  // A page already on its way elsewhere (the Sign out button's own redirect) is left to go.
  var leaving = false;
  window.addEventListener("beforeunload", function () { leaving = true; });
  document.addEventListener("htmx:sseOpen", function (e) {
    var source = e.detail.source;
    source.addEventListener("signed-out", function (m) {
      source.close();
      if (!leaving) window.location.assign(m.data || "/login");
    });
  });
  // Live parts of a page (hx-trigger="sse:TOPIC") fetch themselves again on their topic's
  // events. Events are numbered; a part remembers the number it was rendered at (data-since,
  // from the answer's X-Homelab-Since, or the page's homelab-since), and the stream's first
  // event ("hello") and every later one say the newest number of each topic. A part older
  // than its topic missed an event (sent before the stream opened, while it reconnected, or
  // while the part was on its way) and fetches itself now, so no page stays behind.
  var seen = {};
  var boot = null;
  var topics = ["devices", "deploy", "apps", "update"];
  function pageSince() {
    var m = document.querySelector("meta[name=homelab-since]");
    return m ? Number(m.content) || 0 : 0;
  }
  function liveParts(root) {
    var list = [];
    if (!root || !root.querySelectorAll) return list;
    if (root.matches("[hx-trigger*='sse:']")) list.push(root);
    root.querySelectorAll("[hx-trigger*='sse:']").forEach(function (el) { list.push(el); });
    return list;
  }
  function wantedTopics(el) {
    return el.getAttribute("hx-trigger").match(/sse:[a-z-]+/g) || [];
  }
  // A part's number moves only when an answer arrives (from its header), so a fetch that
  // failed is tried again at the next hello or swap.
  function catchUp(el) {
    var since = el.hasAttribute("data-since") ? Number(el.getAttribute("data-since")) : pageSince();
    var wanted = wantedTopics(el);
    for (var i = 0; i < wanted.length; i++) {
      if ((seen[wanted[i].slice(4)] || 0) > since) {
        htmx.trigger(el, wanted[i]);
        return;
      }
    }
  }
  document.addEventListener("htmx:sseOpen", function (e) {
    var source = e.detail.source;
    // The browser reopens the same stream after a drop and says so again: listen once.
    if (source.homelabListening) return;
    source.homelabListening = true;
    source.addEventListener("hello", function (m) {
      var last = {};
      try { last = JSON.parse(m.data); } catch (err) { /* an older box: nothing to compare */ }
      // Another run of the daemon numbers from 1 again: forget the old numbers and fetch
      // every live part once (anything may have changed while it restarted).
      var restarted = boot !== null && last.boot !== boot;
      boot = last.boot;
      if (restarted) {
        seen = {};
        var meta = document.querySelector("meta[name=homelab-since]");
        if (meta) meta.content = "0";
      }
      topics.forEach(function (t) { seen[t] = Math.max(seen[t] || 0, Number(last[t]) || 0); });
      liveParts(document.body).forEach(function (el) {
        if (restarted) {
          el.removeAttribute("data-since");
          var wanted = wantedTopics(el);
          if (wanted.length) htmx.trigger(el, wanted[0]);
        } else {
          catchUp(el);
        }
      });
    });
    topics.forEach(function (t) {
      source.addEventListener(t, function (m) {
        seen[t] = Math.max(seen[t] || 0, Number(m.lastEventId) || 0);
      });
    });
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var xhr = e.detail.xhr;
    var since = xhr && xhr.getResponseHeader("X-Homelab-Since");
    if (since === null || since === undefined) return;
    var parts = liveParts(e.detail.target);
    var asker = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (asker && asker.isConnected && parts.indexOf(asker) < 0 && asker.matches("[hx-trigger*='sse:']")) parts.push(asker);
    parts.forEach(function (el) {
      el.setAttribute("data-since", since);
      catchUp(el);
    });
  });
  // Move keyboard focus to new page content after an htmx navigation, for screen readers.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail.target && e.detail.target.id === "main") e.detail.target.focus({ preventScroll: true });
  });
  // A network failure (box restarting, Wi-Fi gone) gets a toast instead of silence.
  document.addEventListener("htmx:sendError", function () {
    var box = document.getElementById("toasts");
    if (!box) return;
    var t = document.createElement("div");
    t.className = "toast toast-error";
    t.setAttribute("role", "alert");
    t.innerHTML = '<span class="toast-icon" aria-hidden="true">⚠</span><div class="toast-body"><strong>Problem:</strong> The box did not answer. Check that it is powered on and connected, then try again.</div><button type="button" class="toast-close" aria-label="Dismiss">×</button>';
    box.appendChild(t);
  });
  // Update and configuration files are uploaded as they are (not as a form), with a progress
  // bar: they are large.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches("form[data-upload]")) return;
    e.preventDefault();
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    var status = form.querySelector("[role=status]");
    var bar = form.querySelector("progress");
    var button = form.querySelector("button[type=submit]");
    var csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("data-upload"));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    // A refusal comes back as a short fragment, not a whole page.
    xhr.setRequestHeader("HX-Request", "true");
    xhr.upload.onprogress = function (p) {
      if (!p.lengthComputable) return;
      bar.hidden = false;
      bar.value = Math.round((100 * p.loaded) / p.total);
      status.textContent = "Uploading… " + bar.value + "%";
    };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) {
        button.disabled = false;
        bar.hidden = true;
        status.textContent = "Received.";
        // What to show next: the form says (the import's passphrase step), else the update panel.
        htmx.ajax("GET", form.getAttribute("data-after") || "/settings/updates/panel",
          { target: form.getAttribute("data-after-target") || "#update-panel", swap: "outerHTML" });
        return;
      }
      // The refusal's own words: the API answers JSON, a page route an htmx fragment.
      var why = "";
      try {
        var answer = JSON.parse(xhr.responseText);
        why = (answer.error && answer.error.message) || answer.message || "";
      } catch (err) {
        why = new DOMParser().parseFromString(xhr.responseText, "text/html").body.textContent.trim();
      }
      button.disabled = false;
      bar.hidden = true;
      status.textContent = why || "The box refused the file (" + xhr.status + ").";
      status.classList.add("error-text");
    };
    xhr.onerror = function () {
      button.disabled = false;
      status.textContent = "The upload did not reach the box. Check the connection and try again.";
    };
    button.disabled = true;
    status.classList.remove("error-text");
    status.textContent = form.getAttribute("data-uploading") || "Uploading…";
    xhr.send(file);
  });
  // The update window is in the owner's time: their browser says how far that is from UTC.
  document.addEventListener("htmx:load", function (e) {
    var root = e.detail.elt.querySelectorAll ? e.detail.elt : document;
    root.querySelectorAll("input[data-utc-offset]").forEach(function (input) {
      input.value = String(-new Date().getTimezoneOffset());
    });
  });
  // After "Restart now": wait for the box to go and come back, then load the page afresh.
  document.addEventListener("htmx:load", function (e) {
    var el = e.detail.elt.querySelector ? (e.detail.elt.matches("[data-wait-restart]") ? e.detail.elt : e.detail.elt.querySelector("[data-wait-restart]")) : null;
    if (!el) return;
    var url = el.getAttribute("data-wait-restart");
    function poll() {
      fetch(url, { cache: "no-store" }).then(function (r) {
        if (r.ok) location.reload(); else setTimeout(poll, 3000);
      }, function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 15000);
  });
})();
