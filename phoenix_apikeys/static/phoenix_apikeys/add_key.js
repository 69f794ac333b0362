"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("#content-main form");
  if (!form) return;

  // One click, one key: a second submit while the first is on its way would create a key that
  // nobody ever sees, since the browser shows only the last response.
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) {
      event.preventDefault();
      return;
    }
    sent = true;
  });

  // admin.css hides the expiry date unless "On a date…" is chosen; a hidden date is not sent,
  // so a date typed before choosing a preset does not refuse the form. It comes back with
  // "On a date…".
  var choice = form.querySelector("select[name=expires_in]");
  var date = form.querySelector("input[name=expires_on]");
  var row = date && date.closest(".form-row");
  if (!choice || !row) return;
  function follow() {
    date.disabled = getComputedStyle(row).display === "none";
  }
  choice.addEventListener("change", follow);
  follow();
});
