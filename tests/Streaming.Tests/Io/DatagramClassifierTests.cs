using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

public sealed class DatagramClassifierTests
{
    [Theory]
    [InlineData(0, DatagramKind.Stun)]
    [InlineData(3, DatagramKind.Stun)]
    [InlineData(4, DatagramKind.Unknown)]
    [InlineData(15, DatagramKind.Unknown)]
    [InlineData(16, DatagramKind.Zrtp)]
    [InlineData(19, DatagramKind.Zrtp)]
    [InlineData(20, DatagramKind.Dtls)]
    [InlineData(22, DatagramKind.Dtls)]
    [InlineData(63, DatagramKind.Dtls)]
    [InlineData(64, DatagramKind.TurnChannel)]
    [InlineData(79, DatagramKind.TurnChannel)]
    [InlineData(80, DatagramKind.Unknown)]
    [InlineData(127, DatagramKind.Unknown)]
    [InlineData(128, DatagramKind.Rtp)]
    [InlineData(191, DatagramKind.Rtp)]
    [InlineData(192, DatagramKind.Unknown)]
    [InlineData(255, DatagramKind.Unknown)]
    public void ClassifiesByFirstByteAsRfc7983Says(int first, DatagramKind expected)
    {
        Assert.Equal(expected, DatagramClassifier.Classify((byte)first));
        Assert.Equal(expected, DatagramClassifier.Classify([(byte)first, 1, 2]));
    }

    [Fact]
    public void EmptyDatagramIsUnknown() => Assert.Equal(DatagramKind.Unknown, DatagramClassifier.Classify(ReadOnlySpan<byte>.Empty));

    [Fact]
    public void ReadsTheLocalFragmentOfAUsername()
    {
        Assert.True(StunUsername.TryGetLocalFragment(ToyPeer.BindingRequest("abcd:wxyz"), out var fragment));
        Assert.Equal("abcd", StunUsername.Decode(fragment));
    }

    [Fact]
    public void RejectsMalformedRequestsWithoutThrowing()
    {
        var good = ToyPeer.BindingRequest("abcd:wxyz");
        Assert.False(StunUsername.TryGetLocalFragment(good.AsSpan(0, 19), out _));       // shorter than a header
        Assert.False(StunUsername.TryGetLocalFragment(good.AsSpan(0, good.Length - 4), out _)); // length overruns
        var badCookie = (byte[])good.Clone(); badCookie[4] ^= 1;
        Assert.False(StunUsername.TryGetLocalFragment(badCookie, out _));
        var response = (byte[])good.Clone(); response[0] = 0x01; response[1] = 0x01;
        Assert.False(StunUsername.TryGetLocalFragment(response, out _));
        var overrun = (byte[])good.Clone(); overrun[23] = 200;                              // attribute longer than the message
        Assert.False(StunUsername.TryGetLocalFragment(overrun, out _));
        var random = new Random(1);
        var refused = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var junk = new byte[random.Next(0, 64)];
            random.NextBytes(junk);
            if (junk.Length > 0) junk[0] = 0;
            // Random bytes never make a Binding request with a USERNAME (the magic cookie alone is 32 bits): each is
            // refused, none throws; and each is still STUN by its first byte for the driver (which then drops it, counted).
            if (!StunUsername.TryGetLocalFragment(junk, out _)) refused++;
            Assert.Equal(junk.Length == 0 ? DatagramKind.Unknown : DatagramKind.Stun, DatagramClassifier.Classify(junk));
        }
        Assert.Equal(10_000, refused);
    }
}
