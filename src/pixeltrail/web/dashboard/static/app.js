// pixeltrail dashboard: small progressive enhancements; every page works without them.
"use strict";

// <form data-confirm="Really?">: ask before sending.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// <section data-refresh="/path/fragment" data-every="5">: replace the section's content with
// the fragment every few seconds while the page is visible (the report while a campaign sends,
// an import's progress). A fragment holding [data-refresh-done] is the last one (the import's
// result); a 404 means there is nothing more to show.
function startRefresh(section) {
  const every = Math.max(1, Number(section.dataset.every || 5)) * 1000;
  const tick = async () => {
    if (document.visibilityState === "visible") {
      try {
        const answer = await fetch(section.dataset.refresh, { credentials: "same-origin" });
        // Redirected: the session ended and this is the sign-in page, not the fragment.
        if (answer.redirected || answer.status === 404) return;
        if (answer.ok) section.innerHTML = await answer.text();
        if (section.querySelector("[data-refresh-done]")) return;
      } catch (_) { /* offline for a moment: try again next tick */ }
    }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}
document.querySelectorAll("[data-refresh]").forEach(startRefresh);

// <button data-copy="#id">: copy the text of an element.
document.addEventListener("click", (event) => {
  const button = event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (source && navigator.clipboard) navigator.clipboard.writeText(source.textContent.trim());
});

// <form data-live-preview="/draft/url"> with a <button data-preview formtarget="frame-name">:
// while the author types, post the form as a draft (rendered for the preview, never saved),
// then reload the iframe with location.replace: no history entry, no srcdoc or blob: URL
// (the page's CSP refuses them), no script in the email document. Without this script, the
// Preview button posts the form into the iframe.
function startLivePreview(form) {
  const button = form.querySelector("[data-preview]");
  const frame = button && document.querySelector(`iframe[name="${button.formTarget}"]`);
  if (!frame) return;
  const source = frame.getAttribute("src");
  let timer = null;
  let round = 0;
  const refresh = async () => {
    const mine = ++round;
    try {
      const answer = await fetch(form.dataset.livePreview, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
      });
      if (!answer.ok || mine !== round) return;
      frame.contentWindow.location.replace(`${source}?draft=${mine}-${Date.now()}`);
    } catch (_) { /* offline for a moment: the next keystroke tries again */ }
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
}
document.querySelectorAll("form[data-live-preview]").forEach(startLivePreview);

// Contact import mapping (table.mapping): a column's custom field name matters only while
// "Custom field" is chosen for it, so its input is off otherwise (the server ignores it then).
function syncMappingRow(select) {
  const row = select.closest("tr");
  const name = row && row.querySelector("input[name^='name_']");
  if (name) name.disabled = select.value !== "custom";
}
document.querySelectorAll("table.mapping select").forEach((select) => {
  syncMappingRow(select);
  select.addEventListener("change", () => syncMappingRow(select));
});
