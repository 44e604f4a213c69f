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
})();
