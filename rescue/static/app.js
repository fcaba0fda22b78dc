// The workbench's own script: one behaviour, no framework.
// A form is sent once: its submit buttons are disabled while it is being sent
// (the server also refuses a second record: rescue.web.forms.once).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset.sending === "1") { event.preventDefault(); return; }
  form.dataset.sending = "1";
  setTimeout(function () {
    form.querySelectorAll("button[type=submit], button:not([type])").forEach(function (b) { b.disabled = true; });
  }, 0);
});
