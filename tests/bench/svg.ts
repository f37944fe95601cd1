/**
 * A line chart of keys per second over time, one line per strategy, with the capacity left to the pipeline (the
 * emulated CreateApiKey limit less a neighbour's share) as a dashed line; `title` names the scenario.
 */
export function goodputSvg(series: Array<{ name: string; perSecond: number[] }>, limitPerSecond: number, title = ''): string {
  const width = 760;
  const height = 380;
  const pad = { left: 56, right: 200, top: 44, bottom: 44 };
  const seconds = Math.max(1, ...series.map((s) => s.perSecond.length));
  const top = Math.max(limitPerSecond * 1.2, ...series.flatMap((s) => s.perSecond));
  const x = (t: number) => pad.left + (t / seconds) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  const colours = ['#1b7837', '#d6604d', '#4393c3', '#8073ac', '#e08214'];
  const lines = series.map((s, i) => {
    const points = s.perSecond.map((v, t) => `${x(t + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const colour = colours[i % colours.length];
    return [
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points}"/>`,
      `<rect x="${width - pad.right + 16}" y="${pad.top + i * 22 - 9}" width="14" height="4" fill="${colour}"/>`,
      `<text x="${width - pad.right + 36}" y="${pad.top + i * 22}" font-size="12">${escapeXml(s.name)}</text>`,
    ].join('\n');
  });
  const ticks = Array.from({ length: 6 }, (_, i) => (top * i) / 5);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.left}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>
<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#333"/>
<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#333"/>
${ticks.map((v) => `<text x="${pad.left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v.toFixed(0)}</text>`).join('\n')}
<text x="${(pad.left + width - pad.right) / 2}" y="${height - 10}" font-size="12" text-anchor="middle">seconds since the instances started (${seconds} s)</text>
<text x="14" y="${(pad.top + height - pad.bottom) / 2}" font-size="12" transform="rotate(-90 14 ${(pad.top + height - pad.bottom) / 2})" text-anchor="middle">new keys per second</text>
<line x1="${pad.left}" y1="${y(limitPerSecond)}" x2="${width - pad.right}" y2="${y(limitPerSecond)}" stroke="#999" stroke-dasharray="6 4"/>
<text x="${width - pad.right + 16}" y="${pad.top + series.length * 22}" font-size="12" fill="#666">- - capacity ${+limitPerSecond.toFixed(2)} keys/s</text>
${lines.join('\n')}
</svg>
`;
}

const escapeXml = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
