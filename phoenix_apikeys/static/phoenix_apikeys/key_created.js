"use strict";
// Copy button of the one-time key page: the clipboard API, else select-and-copy. Its words come
// translated from the template (data-copied, data-selected).
function phoenixCopyButton() {
  var button = document.getElementById("phoenix-copy-key");
  if (!button) return;
  var status = document.getElementById("phoenix-copy-status");
  var target = document.getElementById(button.dataset.copyTarget);
  var copiedText = button.dataset.copied || "Copied";
  var selectedText = button.dataset.selected || "Selected: press Ctrl+C (⌘C) to copy";

  function done(message) { status.textContent = message; }

  function selectKey() {
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallback() {
    selectKey();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    done(copied ? copiedText : selectedText);
  }

  button.addEventListener("click", function () {
    var text = target.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(copiedText); }, fallback);
    } else {
      fallback();
    }
  });
}

// Ready as soon as the page is, even if this script ran after DOMContentLoaded.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", phoenixCopyButton);
} else {
  phoenixCopyButton();
}
