// Quorum: progressive enhancement only; every page works without it.
(function () {
  if (window.mermaid && document.querySelector("pre.mermaid")) {
    window.mermaid.initialize({ startOnLoad: true, securityLevel: "strict" });
  }
  // Conditional radios ("Approve with conditions" reveals its box). Not GOV.UK
  // Frontend's Radios module: it sets aria-expanded on the radio input, which
  // axe-core reports as critical (aria-allowed-attr: radios support no
  // aria-expanded). Here the radio only names the box it controls.
  document.querySelectorAll("input[type=radio][data-aria-controls]").forEach(function (input) {
    var box = document.getElementById(input.getAttribute("data-aria-controls"));
    if (!box) return;
    input.setAttribute("aria-controls", box.id);
    var sync = function () {
      box.classList.toggle("govuk-radios__conditional--hidden", !input.checked);
    };
    document.querySelectorAll('input[type=radio][name="' + input.name + '"]').forEach(function (r) {
      r.addEventListener("change", sync);
    });
    sync();
  });
})();
