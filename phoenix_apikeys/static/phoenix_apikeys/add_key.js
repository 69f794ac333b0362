"use strict";
// One click, one key: a second submit while the first is on its way would create a key that
// nobody ever sees, since the browser shows only the last response.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("#content-main form");
  if (!form) return;
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) {
      event.preventDefault();
      return;
    }
    sent = true;
  });
});
