/* The console without this script works the same: it only saves a reload.
   - Provisioning and CSV import progress: refreshes the region marked data-progress-url
     every two seconds until the work is finished, then reloads the page once (to show what
     can be done next). The region is aria-live, so screen readers hear the changes.
   - Branding: the preview follows the colour inputs as they change. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function finished(region) {
    var inner = region.firstElementChild;
    var state = inner ? inner.getAttribute("data-state") : null;
    return state === "done" || state === "failed";
  }

  function follow(region) {
    var url = region.getAttribute("data-progress-url");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("[data-state]");
          if (fresh) { region.replaceChildren(fresh); }
          if (finished(region)) { window.location.reload(); } else { window.setTimeout(tick, 2000); }
        })
        .catch(function () { window.setTimeout(tick, 5000); });
    }
    window.setTimeout(tick, 2000);
  }

  document.querySelectorAll("[data-progress-url]").forEach(function (region) {
    if (!region.hasAttribute("data-finished")) { follow(region); }
  });

  var names = {
    primary_color: "--preview-primary",
    primary_text_color: "--preview-on-primary",
    accent_color: "--preview-accent",
    background_color: "--preview-background",
    text_color: "--preview-text"
  };
  // The colours go into a rule of the page's own stylesheet (the CSP forbids inline styles).
  function previewRule() {
    for (const sheet of Array.from(document.styleSheets)) {
      if (sheet.href && sheet.href.indexOf("/preview.css") !== -1) {
        sheet.insertRule(".branding-preview {}", sheet.cssRules.length);
        return sheet.cssRules[sheet.cssRules.length - 1];
      }
    }
    return null;
  }
  document.querySelectorAll("[data-branding-form]").forEach(function (form) {
    var rule = previewRule();
    if (!rule) { return; }
    form.querySelectorAll("[data-preview]").forEach(function (input) {
      var apply = function () { rule.style.setProperty(names[input.getAttribute("data-preview")], input.value); };
      apply();
      input.addEventListener("input", apply);
    });
  });
})();
