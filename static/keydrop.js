// Keydrop drop form: a small, optional enhancement. The form works the same
// without it (the server treats a repeated form as the same submission).
// 1. While the form is being sent, its button is disabled: a double-click
//    sends once and the admin sees that something is happening.
// 2. Leaving a page whose secret field is filled but not sent asks first:
//    the provider may show that credential only once.
(function () {
  "use strict";
  var form = document.querySelector("form.drop");
  if (!form) {
    return;
  }
  var sending = false;
  var buttons = form.querySelectorAll("button[type=submit]");
  function setBusy(busy) {
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = busy;
      buttons[i].setAttribute("aria-busy", busy ? "true" : "false");
    }
  }
  form.addEventListener("submit", function (event) {
    if (sending) {
      event.preventDefault();
      return;
    }
    sending = true;
    // Disabled after the submit event has started: the submission goes on.
    window.setTimeout(function () { setBusy(true); }, 0);
  });
  window.addEventListener("beforeunload", function (event) {
    if (sending) {
      return;
    }
    var secrets = form.querySelectorAll(".secret");
    for (var i = 0; i < secrets.length; i++) {
      if (secrets[i].value !== "") {
        event.preventDefault();
        event.returnValue = "";
        return "";
      }
    }
  });
  // Back to this page from the browser's cache: usable again.
  window.addEventListener("pageshow", function () {
    sending = false;
    setBusy(false);
  });
})();
