// Latchkey console: progressive enhancement only. Every page works without this file.
// - copy buttons: <button data-copy="element-id" hidden> (shown once this script runs);
// - confirmations: <form data-confirm="message"> asks before submitting;
// - the phone menu (one scrolling row) shows the current page.
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

  // On a phone the main menu is one row that scrolls sideways: bring the current page into view.
  const current = document.querySelector('.sidenav a[aria-current="page"]');
  const row = current?.closest('ul');
  if (current && row && row.scrollWidth > row.clientWidth)
    row.scrollLeft = current.offsetLeft - (row.clientWidth - current.offsetWidth) / 2;

  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.getAttribute('data-confirm') || 'Are you sure?')) event.preventDefault();
    });
  }
})();
