// Disable a form's submit buttons once it is submitted, so a double click sends one
// request. The server is idempotent anyway; this only spares the user a confusing wait.
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form.dataset.submitted === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "1";
  form.querySelectorAll("[type=submit]").forEach(function (button) {
    button.setAttribute("aria-disabled", "true");
    button.classList.add("disabled");
  });
});
