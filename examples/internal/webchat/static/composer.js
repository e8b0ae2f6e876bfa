// The composer: a text area that grows with its text up to the height the
// style sheet allows (then it scrolls). Enter sends, Shift+Enter starts a
// new line, and an Enter that commits an input method's composition (a
// Japanese conversion, say) sends nothing.

// isSendKey reports whether a keydown in a message field sends the message.
export function isSendKey(e) {
  // keyCode 229: the key went to an input method (Safari sets no isComposing
  // on the keydown that ends a composition).
  return e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229;
}

// setupComposer makes text, a textarea in form, grow with its text and
// submit form on Enter.
export function setupComposer(text, form) {
  const fit = () => {
    text.style.height = "auto"; // so that scrollHeight is that of the text, not of the box
    const border = text.offsetHeight - text.clientHeight;
    text.style.height = `${text.scrollHeight + border}px`; // max-height caps it
  };
  text.addEventListener("input", fit);
  text.addEventListener("keydown", (e) => {
    if (!isSendKey(e)) return;
    e.preventDefault();
    form.requestSubmit();
  });
  // Nor the newline of that Enter: a browser types none after a keydown
  // whose default was prevented, but a key's down and its character can
  // arrive apart (DevTools' Input.dispatchKeyEvent, remote keyboards).
  text.addEventListener("keypress", (e) => {
    if (isSendKey(e)) e.preventDefault();
  });
  // After app.js's own submit listener, which empties the field.
  form.addEventListener("submit", () => fit());
}
