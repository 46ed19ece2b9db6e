// Live refresh, as progressive enhancement: a section with data-live is fetched again every
// few seconds while the page is visible and replaced by what the server rendered (escaped
// there). Without this script the pages work the same, refreshed by hand.
const EVERY_MS = 3000;
const shown = new WeakMap(); // each section's last fetched HTML

async function refresh(section) {
  const response = await fetch(section.dataset.live, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) {
    return false; // signed out or expired: stop, the next navigation signs in again
  }
  const html = await response.text();
  if (html === shown.get(section)) {
    return true; // unchanged: leave the page (focus, selection, scrolling) alone
  }
  shown.set(section, html);
  // Keep the keyboard focus where it was when the focused control is redrawn.
  const focused = document.activeElement?.id;
  section.innerHTML = html;
  if (focused) {
    document.getElementById(focused)?.focus();
  }
  return true;
}

function watch(section) {
  const timer = setInterval(async () => {
    if (document.hidden) {
      return;
    }
    try {
      if (!(await refresh(section))) {
        clearInterval(timer);
      }
    } catch {
      // A network hiccup: try again at the next tick.
    }
  }, EVERY_MS);
}

document.querySelectorAll("[data-live]").forEach(watch);
