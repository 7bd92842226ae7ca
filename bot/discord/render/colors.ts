/** Embed colours: one meaning each, the same in every message. */
export const COLOR = {
  progress: 0x3498db,
  success: 0x2ecc71,
  failure: 0xe74c3c,
  warning: 0xe67e22,
  neutral: 0x95a5a6,
} as const;
