// Quorum: marks the page for GOV.UK Frontend's scripted styles (its template's inline
// snippet; the Content-Security-Policy allows no inline script, so it is a file).
document.body.classList.add("js-enabled");
if ("noModule" in HTMLScriptElement.prototype) {
  document.body.classList.add("govuk-frontend-supported");
}
