using Transport.Sctp.Wire;
using Transport.TestKit;

namespace Transport.Sctp.Tests;

public sealed class MalformedInputTests
{
    [Fact]
    public void MutatedAndTruncatedPacketsWithValidChecksumsNeverThrow()
    {
        var (a, b, d) = Pair.Connected(a: new SctpOptions { OfferZeroChecksum = false }, b: new SctpOptions { OfferZeroChecksum = false });
        var captured = new List<byte[]>();
        d.Link.AddFilter(null, m => { captured.Add(m.ToArray()); return false; }, _ => FilterAction.Pass);
        var ch = a.Association.CreateDataChannel("f", now: d.Now);
        for (var i = 0; i < 50; i++) ch.Send(new byte[i * 97 % 3000 + 1]);
        d.RunFor(TimeSpan.FromSeconds(2));
        ch.Close(d.Now);
        d.RunFor(TimeSpan.FromSeconds(2));
        Assert.True(captured.Count > 20);
        var rng = new Random(3);
        for (var round = 0; round < 20_000; round++)
        {
            var src = captured[rng.Next(captured.Count)];
            var len = rng.Next(2) == 0 ? src.Length : rng.Next(12, src.Length + 1);
            var p = src.AsSpan(0, len).ToArray();
            var flips = rng.Next(1, 6);
            for (var k = 0; k < flips && p.Length > 12; k++) p[rng.Next(12, p.Length)] = (byte)rng.Next(256);
            if (rng.Next(4) == 0 && p.Length > 16) p[rng.Next(2, 4) + 12] = 0xFF; // wild chunk length
            if (p.Length >= 12) CommonHeader.Seal(p, zeroChecksum: false);
            var target = rng.Next(2) == 0 ? a : b;
            target.Association.HandleDatagram(p, d.Now);
            target.Drain();
            target.Association.HandleTimeout(d.Now);
            var buf = new byte[2048];
            target.Association.HandleTimeout(d.Now);
            while (target.Association.TryPollTransmit(buf, out _)) { }
        }
        Assert.True(a.Association.Counters.Malformed + b.Association.Counters.Malformed > 0);
        Assert.True(a.Association.ReceiveBuffered <= a.Association.Options.ReceiveBufferSize + 64 * 1024);
        Assert.True(b.Association.ReceiveBuffered <= b.Association.Options.ReceiveBufferSize + 64 * 1024);
    }

    [Fact]
    public void ShortAndEmptyInputsAreCountedAsMalformed()
    {
        var s = new SctpAssociation();
        s.HandleDatagram(ReadOnlySpan<byte>.Empty, TimeSpan.Zero);
        s.HandleDatagram(new byte[5], TimeSpan.Zero);
        s.HandleDatagram(new byte[15], TimeSpan.Zero);
        Assert.Equal(3, s.Counters.Malformed);
        Assert.Equal(SctpState.Closed, s.State);
    }
}
