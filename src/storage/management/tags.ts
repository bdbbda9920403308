/** Stored tags are a JSON object; anything else reads as none. */
export const tagsOf = (text: string): Record<string, string> => {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
};
