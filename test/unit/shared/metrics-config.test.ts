import { describe, expect, it } from 'vitest';
import { readMetricsListen } from '../../../shared/metrics-config.js';

describe('METRICS_PORT and METRICS_HOST', () => {
  it('serve nothing when METRICS_PORT is unset or empty', () => {
    expect(readMetricsListen({})).toBeUndefined();
    expect(readMetricsListen({ METRICS_PORT: '' })).toBeUndefined();
    expect(readMetricsListen({ METRICS_PORT: '', METRICS_HOST: '0.0.0.0' })).toBeUndefined();
  });

  it('listen on loopback by default, and where METRICS_HOST says otherwise', () => {
    expect(readMetricsListen({ METRICS_PORT: '9464' })).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(readMetricsListen({ METRICS_PORT: '9464', METRICS_HOST: '' })).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(readMetricsListen({ METRICS_PORT: ' 9464 ', METRICS_HOST: '0.0.0.0' })).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(readMetricsListen({ METRICS_PORT: '9464', METRICS_HOST: '::' })).toEqual({ host: '::', port: 9464 });
    expect(readMetricsListen({ METRICS_PORT: '9464', METRICS_HOST: '[::1]' })).toEqual({ host: '::1', port: 9464 });
    expect(readMetricsListen({ METRICS_PORT: '9464', METRICS_HOST: 'kvm-01.internal' })).toEqual({ host: 'kvm-01.internal', port: 9464 });
  });

  it.each(['0', '65536', 'abc', '94.64', '1e4', '-1', '9464/tcp'])('refuse METRICS_PORT=%s, naming it', (port) => {
    expect(() => readMetricsListen({ METRICS_PORT: port })).toThrow(/METRICS_PORT: expected a TCP port from 1 to 65535/);
  });

  it.each(['http://0.0.0.0', '127.0.0.1:9464', 'two words', '-leading-dash'])('refuse METRICS_HOST=%s, naming it', (host) => {
    expect(() => readMetricsListen({ METRICS_PORT: '9464', METRICS_HOST: host })).toThrow(/METRICS_HOST: expected an address of this machine/);
  });
});
