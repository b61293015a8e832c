import { describe, expect, it } from 'vitest';
import { decodeUtf8, isStorableText, toStorableText } from './text.ts';

describe('storable text', () => {
  it('refuses NUL and unpaired surrogates, accepts everything else', () => {
    expect(isStorableText('plain, accentué, 東京, 🔥, \u0001\t\n')).toBe(true);
    for (const s of ['a\u0000b', '\ud800', 'x\udc00', '\udc00\ud800', '\ud83d'])
      expect(isStorableText(s)).toBe(false);
  });

  it('replaces what cannot be stored by U+FFFD and keeps the rest', () => {
    expect(toStorableText('a\u0000b\ud800c🔥\udc00')).toBe('a\ufffdb\ufffdc🔥\ufffd');
    const same = 'unchanged';
    expect(toStorableText(same)).toBe(same);
  });

  it('decodes UTF-8 only: UTF-16 with a byte order mark and stray bytes are not text', () => {
    expect(decodeUtf8(Buffer.from('\ufeff{"a":"é"}', 'utf8'))).toBe('{"a":"é"}');
    expect(
      decodeUtf8(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{}', 'utf16le')])),
    ).toBeUndefined();
    expect(decodeUtf8(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]))).toBeUndefined();
    expect(decodeUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBeUndefined();
    // UTF-16 without a byte order mark is valid UTF-8, full of NUL characters: isStorableText refuses it.
    expect(isStorableText(decodeUtf8(Buffer.from('{}', 'utf16le')) ?? '')).toBe(false);
  });
});
