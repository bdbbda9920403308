// Latchkey console: progressive enhancement only. Every page works without this file.
// - copy buttons: <button data-copy="element-id" hidden> (shown once this script runs);
// - confirmations: <form data-confirm="message"> asks before submitting;
// - the phone menu (one scrolling row) shows the current page;
// - the member picker searches as you type (the Search button and ?member= work without it).
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

  // Member picker: live matches from the console's JSON search, rendered with DOM APIs (no HTML
  // from the server). While live matches show, the page's own member field is disabled and hidden,
  // so the form sends exactly one member.
  const field = document.querySelector('[data-member-field]');
  const search = document.getElementById('member-search');
  if (field && search) {
    const live = document.createElement('fieldset');
    live.id = 'member-live';
    live.hidden = true;
    live.setAttribute('aria-live', 'polite');
    field.before(live);
    const showField = (on) => {
      field.hidden = !on;
      for (const el of field.querySelectorAll('input')) el.disabled = !on;
    };
    let timer;
    let asked = 0;
    const render = (items, term) => {
      live.replaceChildren();
      const legend = document.createElement('legend');
      legend.textContent = 'Member';
      live.append(legend);
      if (items.length === 0) {
        const p = document.createElement('p');
        p.className = 'muted';
        p.textContent = `No member you may see matches “${term}”.`;
        live.append(p);
        live.hidden = false;
        showField(true);
        return;
      }
      items.forEach((m, i) => {
        const div = document.createElement('div');
        div.className = 'check';
        const radio = document.createElement('input');
        radio.type = 'radio';
        radio.name = 'assignee';
        radio.id = `member-live-${i}`;
        radio.value = m.id;
        radio.checked = i === 0;
        const label = document.createElement('label');
        label.htmlFor = radio.id;
        const kind = document.createElement('span');
        kind.className = 'muted';
        kind.textContent = m.kind;
        const id = document.createElement('span');
        id.className = 'hint mono';
        id.textContent = m.id;
        label.append(`${m.displayName} `, kind, id);
        div.append(radio, label);
        live.append(div);
      });
      live.hidden = false;
      showField(false);
    };
    search.addEventListener('input', () => {
      clearTimeout(timer);
      const term = search.value.trim();
      if (term.length < 2) {
        live.hidden = true;
        live.replaceChildren();
        showField(true);
        return;
      }
      timer = setTimeout(async () => {
        const mine = ++asked;
        try {
          const url = `${field.getAttribute('data-member-search')}?q=${encodeURIComponent(term)}`;
          const res = await fetch(url, {
            credentials: 'same-origin',
            headers: { accept: 'application/json' },
          });
          if (!res.ok || mine !== asked) return;
          const body = await res.json();
          render(Array.isArray(body.value) ? body.value : [], term);
        } catch {
          // Offline or refused: the Search button still works.
        }
      }, 250);
    });
  }

  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.getAttribute('data-confirm') || 'Are you sure?')) event.preventDefault();
    });
  }
})();
