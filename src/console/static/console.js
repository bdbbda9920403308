// Latchkey console: progressive enhancement only. Every page works without this file.
// - copy buttons: <button data-copy="element-id" hidden> (shown once this script runs);
// - confirmations: <form data-confirm="message"> asks before submitting.
(() => {
  const status = () => document.getElementById('live-status');

  for (const button of document.querySelectorAll('button[data-copy]')) {
    button.hidden = false;
    button.addEventListener('click', async () => {
      const source = document.getElementById(button.getAttribute('data-copy') || '');
      if (!source) return;
      const text = source.textContent || '';
      try {
        await navigator.clipboard.writeText(text);
        const s = status();
        if (s) s.textContent = 'Copied to the clipboard.';
        button.textContent = 'Copied';
      } catch {
        // No clipboard access (insecure context or denied): select the text so the user can copy it.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        if (selection) {
          selection.removeAllRanges();
          selection.addRange(range);
        }
      }
    });
  }

  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.getAttribute('data-confirm') || 'Are you sure?')) event.preventDefault();
    });
  }
})();
