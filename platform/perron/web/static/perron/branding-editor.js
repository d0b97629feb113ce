/* The branding editor's live preview (/admin/branding).

   The page works without this script: "Preview" sends the form and the page comes back with
   the proposed colours. With it, the preview panel and the contrast check follow the inputs as
   they change. The Content-Security-Policy forbids inline styles, so the colours are set as CSS
   custom properties through the CSSOM (element.style.setProperty), which it allows. */
(function () {
  "use strict";

  var form = document.getElementById("branding-form");
  var panel = document.getElementById("branding-preview");
  if (!form || !panel || !panel.style || !panel.style.setProperty) {
    return;
  }

  var HEX = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i;
  var TARGET = 4.5;

  function normalise(value) {
    var text = (value || "").trim();
    if (!HEX.test(text)) {
      return null;
    }
    text = text.toLowerCase();
    if (text.length === 4) {
      text = "#" + text[1] + text[1] + text[2] + text[2] + text[3] + text[3];
    }
    return text;
  }

  function channel(part) {
    var value = parseInt(part, 16) / 255;
    return value <= 0.04045 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4);
  }

  function luminance(colour) {
    return 0.2126 * channel(colour.slice(1, 3)) + 0.7152 * channel(colour.slice(3, 5)) +
      0.0722 * channel(colour.slice(5, 7));
  }

  function contrast(first, second) {
    var a = luminance(first);
    var b = luminance(second);
    var lighter = Math.max(a, b);
    var darker = Math.min(a, b);
    return (lighter + 0.05) / (darker + 0.05);
  }

  var language = document.documentElement.lang || "fr";
  var ratioFormat = window.Intl && Intl.NumberFormat
    ? new Intl.NumberFormat(language, {minimumFractionDigits: 2, maximumFractionDigits: 2})
    : null;

  function shownRatio(ratio) {
    var cut = Math.floor(ratio * 100) / 100; /* never rounded up: 4.499 is not 4.50 */
    return ratioFormat ? ratioFormat.format(cut) : cut.toFixed(2);
  }

  var codes = form.querySelectorAll("[data-colour-code]");
  var pickers = {};
  Array.prototype.forEach.call(form.querySelectorAll("[data-colour-picker]"), function (picker) {
    pickers[picker.getAttribute("data-colour-picker")] = picker;
  });

  function currentColours() {
    var colours = {};
    Array.prototype.forEach.call(codes, function (code) {
      colours[code.getAttribute("data-colour-code")] = normalise(code.value);
    });
    return colours;
  }

  function updateContrast(colours, changed) {
    var failing = 0;
    var complete = true;
    Array.prototype.forEach.call(form.querySelectorAll("[data-foreground]"), function (item) {
      var foreground = colours[item.getAttribute("data-foreground")];
      var background = colours[item.getAttribute("data-background")];
      if (!foreground || !background) {
        complete = false;
        return;
      }
      var ratio = contrast(foreground, background);
      var passes = ratio >= TARGET;
      if (!passes) {
        failing += 1;
      }
      item.querySelector("[data-contrast-ratio]").textContent = shownRatio(ratio);
      Array.prototype.forEach.call(item.querySelectorAll("[data-when]"), function (part) {
        var showing = part.getAttribute("data-when") === "pass" ? passes : !passes;
        if (part.tagName === "P" && changed) {
          showing = false; /* the server's explanation names the colours it was sent */
        }
        part.hidden = !showing;
      });
    });
    var summary = document.getElementById("contrast-summary");
    if (summary && complete && changed) {
      var message = summary.getAttribute(failing ? "data-some-fail" : "data-all-pass");
      if (summary.textContent !== message) {
        summary.textContent = message;
      }
    }
  }

  function updateColours(changed) {
    var colours = currentColours();
    Array.prototype.forEach.call(codes, function (code) {
      var value = colours[code.getAttribute("data-colour-code")];
      if (value) {
        panel.style.setProperty(code.getAttribute("data-property"), value);
      }
    });
    updateContrast(colours, changed);
  }

  Array.prototype.forEach.call(codes, function (code) {
    var key = code.getAttribute("data-colour-code");
    var picker = pickers[key];
    code.addEventListener("input", function () {
      var value = normalise(code.value);
      if (value && picker) {
        picker.value = value;
      }
      updateColours(true);
    });
    if (picker) {
      picker.addEventListener("input", function () {
        code.value = picker.value;
        updateColours(true);
      });
    }
  });

  Array.prototype.forEach.call(form.querySelectorAll("[data-font-stack]"), function (radio) {
    radio.addEventListener("change", function () {
      if (radio.checked) {
        panel.style.setProperty("--perron-font", radio.getAttribute("data-font-stack"));
      }
    });
  });

  var taglineInput = form.querySelector("[data-preview-tagline-input]");
  var taglineShown = panel.querySelector("[data-preview-tagline]");
  if (taglineInput && taglineShown) {
    taglineInput.addEventListener("input", function () {
      taglineShown.textContent = taglineInput.value;
    });
  }

  /* The panel follows the inputs now: the advice to press "Preview" no longer applies. */
  Array.prototype.forEach.call(document.querySelectorAll("[data-without-script]"), function (part) {
    part.hidden = true;
  });
  updateColours(false);
})();
