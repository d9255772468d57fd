// Quorum: progressive enhancement only; every page works without it.
(function () {
  if (window.mermaid && document.querySelector("pre.mermaid")) {
    window.mermaid.initialize({ startOnLoad: true, securityLevel: "strict" });
  }
})();
