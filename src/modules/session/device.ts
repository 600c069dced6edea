import { UAParser } from 'ua-parser-js';
import type { DeviceDto } from './dto/session.dto.js';

const CACHE_SIZE = 1000;
/** Parsing runs dozens of regexes; the same few user agents come back again and again. */
const cache = new Map<string, DeviceDto>();

/** Browser, OS and device type for the device list, parsed from the User-Agent. */
export function describeDevice(userAgent: string | null): DeviceDto {
  if (!userAgent) return { browser: null, os: null, type: 'unknown' };
  const cached = cache.get(userAgent);
  if (cached) return cached;
  const device = parse(userAgent);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(userAgent, device);
  return device;
}

function parse(userAgent: string): DeviceDto {
  const { browser, os, device } = new UAParser(userAgent).getResult();
  const join = (...parts: (string | undefined)[]) => parts.filter((part) => part).join(' ') || null;
  return {
    browser: join(browser.name, browser.major),
    os: join(os.name, os.version),
    // ua-parser leaves the type empty for desktops.
    type: device.type ?? (browser.name || os.name ? 'desktop' : 'unknown'),
  };
}
