#!/usr/bin/env python3
"""Prints the datagram timeline of set-up runs captured by the setup-time bench (SETUP_TIME_PCAP=DIR: DIR/a.pcap on
our namespace's end of the link, DIR/b.pcap on the other peer's). Each datagram is shown once, with the time it left
its sender and the time it reached the other side (the same bytes in the other capture), in ms from the run's first
datagram, and what it carries: STUN (request/response, USE-CANDIDATE, SPED's META-DTLS-IN-STUN with the DTLS records
inside and META-DTLS-IN-STUN-ACK with the CRC-32s it names) or DTLS (records: handshake messages in epoch 0, else the
content type and epoch). A DTLS datagram's CRC-32 is printed so SPED's ACKs can be matched to it.

python3 bench/sped-trace.py DIR [A-ADDRESS=10.99.0.1]
"""
import struct
import sys
import zlib

HS = {1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest", 4: "NewSessionTicket", 8: "EncryptedExtensions",
      11: "Certificate", 12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone", 15: "CertificateVerify",
      16: "ClientKeyExchange", 20: "Finished", 6: "HelloRetryRequest"}
CT = {20: "CCS", 21: "Alert", 22: "HS", 23: "App", 25: "ACK"}


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:
            pkt = pkt[14:]
        elif linktype == 113:
            pkt = pkt[16:]
        if len(pkt) < 28 or pkt[0] >> 4 != 4 or pkt[9] != 17:
            continue
        if 53 in struct.unpack(">HH", pkt[(pkt[0] & 15) * 4:(pkt[0] & 15) * 4 + 4]):
            continue  # DNS (Chromium's resolver), not the peers'
        ihl = (pkt[0] & 15) * 4
        src = ".".join(map(str, pkt[12:16]))
        dst = ".".join(map(str, pkt[16:20]))
        sport, dport = struct.unpack(">HH", pkt[ihl:ihl + 4])
        yield t, src, sport, dst, dport, bytes(pkt[ihl + 8:])


def dtls_summary(d):
    out = []
    off = 0
    while off + 13 <= len(d):
        ct = d[off]
        if ct & 0xE0 == 0x20:  # DTLS 1.3 unified header (encrypted)
            flags = ct
            hlen = 1 + (2 if flags & 8 else 1) + (2 if flags & 4 else 0)
            length = struct.unpack(">H", d[off + hlen - 2:off + hlen])[0] if flags & 4 else len(d) - off - hlen
            out.append(f"enc(e{flags & 3})")
            off += hlen + length
            continue
        epoch = struct.unpack(">H", d[off + 3:off + 5])[0]
        length = struct.unpack(">H", d[off + 11:off + 13])[0]
        body = d[off + 13:off + 13 + length]
        if ct == 22 and epoch == 0 and len(body) >= 12:
            mt = body[0]
            mlen = int.from_bytes(body[1:4], "big")
            foff = int.from_bytes(body[6:9], "big")
            flen = int.from_bytes(body[9:12], "big")
            frag = "" if foff == 0 and flen == mlen else f"[{foff}+{flen}/{mlen}]"
            out.append(HS.get(mt, f"hs{mt}") + frag)
        else:
            out.append(f"{CT.get(ct, ct)}(e{epoch},{length})")
        off += 13 + length
    return " ".join(out) or f"dtls?{len(d)}"


def stun_summary(d):
    mtype, mlen = struct.unpack(">HH", d[:4])
    kind = {0x0001: "REQ", 0x0101: "RESP", 0x0111: "ERR", 0x0011: "IND"}.get(mtype, hex(mtype))
    txid = d[8:20].hex()[:8]
    parts = [f"STUN {kind} {txid}"]
    off = 20
    while off + 4 <= len(d):
        at, al = struct.unpack(">HH", d[off:off + 4])
        v = d[off + 4:off + 4 + al]
        if at == 0x0025:
            parts.append("USE-CANDIDATE")
        elif at == 0xC070:
            parts.append(f"DATA[{dtls_summary(v)} crc={zlib.crc32(v):08x}]" if v else "DATA[]")
        elif at == 0xC071:
            parts.append("ACK[" + ",".join(f"{struct.unpack('>I', v[i:i + 4])[0]:08x}" for i in range(0, len(v) - 3, 4)) + "]")
        off += 4 + al + ((4 - al % 4) % 4)
    return " ".join(parts)


def describe(p):
    if not p:
        return "empty"
    b = p[0]
    if b < 2:
        return stun_summary(p)
    if 20 <= b <= 63:
        return f"DTLS {dtls_summary(p)} crc={zlib.crc32(p):08x} ({len(p)} B)"
    return f"other {len(p)} B"


def main():
    d = sys.argv[1]
    a_addr = sys.argv[2] if len(sys.argv) > 2 else "10.99.0.1"
    a = list(packets(d + "/a.pcap"))
    b = list(packets(d + "/b.pcap"))
    # Each datagram: its send time in the sender's capture, its arrival in the receiver's (matched by bytes, in order).
    arrivals = {}
    for cap, side in ((a, "a"), (b, "b")):
        for t, src, sp, dst, dp, p in cap:
            sender = "a" if src == a_addr else "b"
            key = (src, sp, dst, dp, p)
            if sender == side:
                arrivals.setdefault(key, {"sent": [], "got": []})["sent"].append(t)
            else:
                arrivals.setdefault(key, {"sent": [], "got": []})["got"].append(t)
    rows = []
    for key, v in arrivals.items():
        for i, s in enumerate(v["sent"]):
            g = v["got"][i] if i < len(v["got"]) else None
            rows.append((s, g, key))
    rows.sort(key=lambda r: r[0])
    # Runs: a new pair of ports starts a run.
    last_ports = None
    t0 = None
    for s, g, (src, sp, dst, dp, p) in rows:
        ports = tuple(sorted((sp, dp)))
        if ports != last_ports:
            last_ports = ports
            t0 = s
            print(f"\n=== run on ports {ports} (t0 {s:.6f})")
        who = "ours ->" if src == a_addr else "   <- Chromium"
        arr = f"{(g - t0) * 1000:7.1f}" if g is not None else "   lost"
        print(f"{(s - t0) * 1000:7.1f} {arr}  {who:15} {describe(p)}")


main()
