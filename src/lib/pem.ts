/** A PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`…), its base64 body, and the whole block. */
export interface PemBlock {
  label: string;
  body: string;
  text: string;
}

const LABEL = /^[A-Z0-9 ]+$/;

/**
 * The PEM blocks of `text`, in order: `-----BEGIN L-----` … the first `-----END L-----` after it,
 * as `/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g` finds them, in linear time. The
 * regular expression is quadratic on bodies it cannot close (thousands of BEGIN lines without an
 * END: 132 ms of the event loop for a 64 KiB import body); here every END marker is indexed once,
 * and each BEGIN finds its END by the label's next position.
 */
export function pemBlocks(text: string): PemBlock[] {
  const ends = new Map<string, number[]>();
  for (let i = text.indexOf('-----END '); i !== -1; i = text.indexOf('-----END ', i + 1)) {
    const close = text.indexOf('-----', i + 9);
    if (close === -1) break;
    const label = text.slice(i + 9, close);
    if (!LABEL.test(label)) continue;
    const at = ends.get(label);
    if (at) at.push(i);
    else ends.set(label, [i]);
  }
  const next = new Map<string, number>(); // per label: the index in `ends` to look from (BEGINs only move forward)
  const out: PemBlock[] = [];
  let from = 0;
  for (;;) {
    const i = text.indexOf('-----BEGIN ', from);
    if (i === -1) return out;
    const close = text.indexOf('-----', i + 11);
    if (close === -1) return out;
    const label = text.slice(i + 11, close);
    const at = LABEL.test(label) ? ends.get(label) : undefined;
    let k = next.get(label) ?? 0;
    while (at && k < at.length && at[k]! < close + 5) k++;
    next.set(label, k);
    if (!at || k === at.length) {
      from = i + 1;
      continue;
    }
    const end = at[k]! + 9 + label.length + 5;
    out.push({ label, body: text.slice(close + 5, at[k]), text: text.slice(i, end) });
    from = end;
  }
}
