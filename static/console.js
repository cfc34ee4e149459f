// Keydrop console: copy buttons, per-field show/hide on the reveal page, and
// hiding revealed values again after 60 seconds. Every page works without it.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button") : null;
    if (!button) {
      return;
    }
    var copy = button.getAttribute("data-copy");
    if (copy) {
      var source = document.getElementById(copy);
      var text = source.getAttribute("data-value") || source.textContent;
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(function () {
          button.textContent = "Copied";
        });
      }
      return;
    }
    var show = button.getAttribute("data-show");
    if (show) {
      var field = document.getElementById(show);
      var shown = field.getAttribute("data-shown") === "true";
      field.textContent = shown ? "••••••••" : field.getAttribute("data-value");
      field.setAttribute("data-shown", shown ? "false" : "true");
      button.textContent = shown ? "Show" : "Hide";
    }
  });
  // With script: masked values with Show and Copy buttons replace the
  // no-script <details> disclosure.
  var disclosures = document.querySelectorAll("details.field");
  for (var d = 0; d < disclosures.length; d++) {
    disclosures[d].remove();
  }
  var hiddenUntilScript = document.querySelectorAll(".masked, .js-only");
  for (var h = 0; h < hiddenUntilScript.length; h++) {
    hiddenUntilScript[h].hidden = false;
  }
  var revealed = document.querySelector("[data-hide-after]");
  if (revealed) {
    var seconds = parseInt(revealed.getAttribute("data-hide-after"), 10);
    window.setTimeout(function () {
      var values = document.querySelectorAll("[data-value]");
      for (var i = 0; i < values.length; i++) {
        values[i].removeAttribute("data-value");
        values[i].textContent = "hidden";
      }
      revealed.textContent = "The values are hidden again. Reveal once more if you still need them (that is audited too).";
    }, seconds * 1000);
  }
})();
