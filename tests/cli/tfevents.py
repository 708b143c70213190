"""An independent reader of TensorBoard event files for the tests: TFRecord framing with both masked
CRC-32Cs checked by Debian's python3-crcmod, and the Event / Summary protobufs decoded from the wire
format by hand, with TensorFlow's field numbers and wire types (event.proto, summary.proto)."""
import os
import re
import socket
import struct

import crcmod.predefined

_crc32c = crcmod.predefined.mkCrcFun('crc-32c')


def masked_crc(data):
    c = _crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xa282ead8) & 0xffffffff


def _varint(b, p):
    shift = v = 0
    while True:
        byte = b[p]
        p += 1
        v |= (byte & 0x7f) << shift
        shift += 7
        if not byte & 0x80:
            return v, p


def _fields(b):
    """(field number, wire type, value) of a message; value is int, bytes or the raw 4/8 bytes."""
    p = 0
    while p < len(b):
        key, p = _varint(b, p)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, p = _varint(b, p)
        elif wt == 1:
            v, p = b[p:p + 8], p + 8
        elif wt == 2:
            n, p = _varint(b, p)
            v, p = b[p:p + n], p + n
        elif wt == 5:
            v, p = b[p:p + 4], p + 4
        else:
            raise ValueError('wire type %d' % wt)
        if p > len(b):
            raise ValueError('field runs past the message')
        yield num, wt, v


def _expect(num, wt, want, what):
    if wt != want:
        raise ValueError('%s: field %d has wire type %d, TensorFlow\'s is %d' % (what, num, wt, want))


def decode_event(b):
    e = {'wall_time': 0.0, 'step': 0, 'file_version': None, 'values': []}
    for num, wt, v in _fields(b):
        if num == 1:
            _expect(num, wt, 1, 'Event.wall_time')
            e['wall_time'] = struct.unpack('<d', v)[0]
        elif num == 2:
            _expect(num, wt, 0, 'Event.step')
            e['step'] = v - (1 << 64) if v >= 1 << 63 else v
        elif num == 3:
            _expect(num, wt, 2, 'Event.file_version')
            e['file_version'] = v.decode()
        elif num == 5:
            _expect(num, wt, 2, 'Event.summary')
            for snum, swt, sv in _fields(v):
                if snum != 1:
                    raise ValueError('Summary field %d' % snum)
                _expect(snum, swt, 2, 'Summary.value')
                tag, value = None, None
                for vnum, vwt, vv in _fields(sv):
                    if vnum == 1:
                        _expect(vnum, vwt, 2, 'Value.tag')
                        tag = vv.decode()
                    elif vnum == 2:
                        _expect(vnum, vwt, 5, 'Value.simple_value')
                        value = struct.unpack('<f', vv)[0]
                    else:
                        raise ValueError('Summary.Value field %d' % vnum)
                if tag is None or value is None:
                    raise ValueError('a Summary.Value without tag or simple_value')
                e['values'].append((tag, value))
        else:
            raise ValueError('Event field %d' % num)
    return e


def read_records(path):
    with open(path, 'rb') as f:
        data = f.read()
    p, out = 0, []
    while p < len(data):
        if p + 12 > len(data):
            raise ValueError('%s: truncated record header at byte %d' % (path, p))
        header = data[p:p + 8]
        (n,) = struct.unpack('<Q', header)
        (hcrc,) = struct.unpack('<I', data[p + 8:p + 12])
        if hcrc != masked_crc(header):
            raise ValueError('%s: bad length CRC at byte %d' % (path, p))
        if p + 16 + n > len(data):
            raise ValueError('%s: truncated record at byte %d' % (path, p))
        body = data[p + 12:p + 12 + n]
        (dcrc,) = struct.unpack('<I', data[p + 12 + n:p + 16 + n])
        if dcrc != masked_crc(body):
            raise ValueError('%s: bad data CRC at byte %d' % (path, p))
        out.append(body)
        p += 16 + n
    return out


def read_dir(d):
    """The one event file in d: its events, checked for TensorFlow's file name and file_version record."""
    files = [f for f in os.listdir(d) if f.startswith('events.out.tfevents.')]
    if len(files) != 1:
        raise ValueError('%s: expected one event file, found %s' % (d, files))
    pattern = r'events\.out\.tfevents\.\d{10}\.%s\.\d+\.\d+' % re.escape(socket.gethostname())
    if not re.fullmatch(pattern, files[0]):
        raise ValueError('event file name %s' % files[0])
    events = [decode_event(r) for r in read_records(os.path.join(d, files[0]))]
    if not events or events[0]['file_version'] != 'brain.Event:2' or events[0]['values']:
        raise ValueError('the first record is not the file_version event')
    last = 0.0
    for e in events:
        if e['wall_time'] < last or e['wall_time'] < 1.6e9:
            raise ValueError('wall times out of order or not Unix times')
        last = e['wall_time']
    return events[1:]


def scalars(events):
    """tag -> [(step, value), ...] in file order."""
    out = {}
    for e in events:
        if len(e['values']) != 1:
            raise ValueError('expected one value per event')
        tag, value = e['values'][0]
        out.setdefault(tag, []).append((e['step'], value))
    return out
