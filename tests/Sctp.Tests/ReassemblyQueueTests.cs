using Transport.Sctp.Wire;

namespace Transport.Sctp.Tests;

/// <summary>Reassembly and ordering on their own (<see cref="ReassemblyQueue"/>): RFC 9260 sections 6.5, 6.6, 6.9; RFC 3758 section 3.6.</summary>
public sealed class ReassemblyQueueTests
{
    private const byte B = DataChunk.FlagBegin, E = DataChunk.FlagEnd, U = DataChunk.FlagUnordered;

    private sealed class Harness
    {
        public readonly List<(ushort Stream, uint Ppid, string Text)> Delivered = new();
        public readonly List<ushort> Oversize = new();
        public readonly SctpCounters Counters = new();
        public readonly ReassemblyQueue Queue;

        public Harness(int maxMessageSize = 1000, ushort streams = 4)
        {
            var pool = new BufferPool(1 << 20);
            Queue = new ReassemblyQueue(pool, Counters, maxMessageSize,
                (s, ppid, buffer, length) => { Delivered.Add((s, ppid, System.Text.Encoding.ASCII.GetString(buffer, 0, length))); pool.Return(buffer); },
                Oversize.Add);
            Queue.Start(streams);
        }

        public void Add(uint tsn, byte flags, string text, ushort stream = 0, ushort ssn = 0, uint ppid = 51) =>
            Queue.Add(tsn, stream, flags, ssn, ppid, System.Text.Encoding.ASCII.GetBytes(text));

        public string[] Texts => Delivered.Select(d => d.Text).ToArray();
    }

    [Fact]
    public void FragmentsArrivingOutOfOrderAreJoinedInTsnOrderAndTheHeldBytesGoWithTheMessage()
    {
        var h = new Harness();
        h.Add(12, E, "ld");
        h.Add(10, B, "he");
        Assert.Empty(h.Delivered);
        Assert.Equal(4, h.Queue.HeldBytes);
        Assert.Equal(2, h.Queue.HeldCount);
        h.Add(11, 0, "llo wor");
        Assert.Equal(new[] { "hello world" }, h.Texts);
        Assert.Equal(0, h.Queue.HeldBytes);
        Assert.Equal(0, h.Queue.HeldCount);
    }

    [Fact]
    public void OrderedMessagesWaitForTheirSsnAndUnorderedOnesGoAtOnce()
    {
        var h = new Harness();
        h.Add(2, B | E, "second", ssn: 1);
        h.Add(3, B | E | U, "unordered");
        Assert.Equal(new[] { "unordered" }, h.Texts);
        Assert.Equal(6, h.Queue.HeldBytes);
        h.Add(1, B | E, "first", ssn: 0);
        Assert.Equal(new[] { "unordered", "first", "second" }, h.Texts);
        Assert.Equal(0, h.Queue.HeldBytes);
        // Streams are independent: stream 1 starts at SSN 0 too.
        h.Add(4, B | E, "other", stream: 1, ssn: 0);
        Assert.Equal("other", h.Texts[^1]);
        Assert.Equal(1, h.Delivered[^1].Stream);
    }

    [Fact]
    public void InterleavedUnorderedFragmentsOfTwoMessagesAreNotMixed()
    {
        var h = new Harness();
        h.Add(1, B | U, "a1");
        h.Add(3, B | U, "b1");
        h.Add(4, E | U, "b2");
        h.Add(2, E | U, "a2");
        Assert.Equal(new[] { "b1b2", "a1a2" }, h.Texts);
    }

    [Fact]
    public void AMessageOverTheMaximumSizeIsRefusedItsStreamReportedAndItsLaterFragmentsDiscarded()
    {
        var h = new Harness(maxMessageSize: 8);
        h.Add(1, B, "12345", ssn: 0);
        h.Add(2, 0, "67890", ssn: 0); // 10 bytes > 8
        Assert.Equal(new ushort[] { 0 }, h.Oversize);
        Assert.Equal(0, h.Queue.HeldBytes);
        h.Add(3, E, "xx", ssn: 0);    // the rest of the refused message
        Assert.Empty(h.Delivered);
        Assert.Equal(2, h.Counters.OversizeMessage);
        h.Add(4, B | E, "ok", stream: 1); // (the refused message kept its SSN: its channel is closed anyway)
        Assert.Equal(new[] { "ok" }, h.Texts);
    }

    [Fact]
    public void DataOnAStreamBeyondTheNegotiatedOnesIsCountedAndDropped()
    {
        var h = new Harness(streams: 2);
        h.Add(1, B | E, "x", stream: 2);
        Assert.Empty(h.Delivered);
        Assert.Equal(1, h.Counters.InvalidStream);
        Assert.Equal(0, h.Queue.HeldBytes);
    }

    [Fact]
    public void ForwardTsnDropsPartialMessagesThatCanNoLongerCompleteAndKeepsOnesStillInProgress()
    {
        var h = new Harness();
        h.Add(5, 0, "mid", ssn: 0);          // its B fragment (4) was abandoned
        h.Add(7, B, "start", stream: 1);     // a reliable message whose rest is still to come
        h.Queue.DropAbandonedFragments(newCumulative: 4, cumulative: 7);
        Assert.Equal(1, h.Queue.HeldCount);  // "mid" went, "start" stays
        h.Add(8, E, "end", stream: 1);
        Assert.Equal(new[] { "startend" }, h.Texts);

        // Cut short: the TSN that would continue the message is behind the cumulative TSN.
        h.Add(20, B, "head", stream: 2);
        h.Queue.DropAbandonedFragments(newCumulative: 21, cumulative: 21);
        Assert.Equal(0, h.Queue.HeldCount);
        Assert.Equal(0, h.Queue.HeldBytes);
    }

    [Fact]
    public void SkippedSsnsArePassedOverAndWaitingMessagesAfterThemDelivered()
    {
        var h = new Harness();
        h.Add(3, B | E, "third", ssn: 2);
        h.Add(1, B | E, "stale", ssn: 0, stream: 1);
        h.Queue.SkipTo(0, 1);               // SSNs 0 and 1 of stream 0 were abandoned
        Assert.Equal(new[] { "stale", "third" }, h.Texts);
        h.Add(4, B | E, "late", ssn: 1);    // an abandoned SSN arriving late is dropped
        Assert.Equal(2, h.Delivered.Count);
        Assert.Equal(0, h.Queue.HeldBytes);
    }

    [Fact]
    public void AStreamResetRestartsSsnsAtZeroAndDropsWaitingMessages()
    {
        var h = new Harness();
        h.Add(1, B | E, "m0", ssn: 0);
        h.Add(3, B | E, "m2", ssn: 2);
        h.Queue.ResetStream(0);
        Assert.Equal(0, h.Queue.HeldBytes);
        h.Add(4, B | E, "n0", ssn: 0);
        Assert.Equal(new[] { "m0", "n0" }, h.Texts);
        Assert.Equal(1, h.Queue.ActiveStreamCount);
        Assert.Equal(0, h.Queue.ActiveStreamId(0));
        h.Add(5, B, "partial", stream: 3);
        h.Queue.Clear();
        Assert.Equal(0, h.Queue.HeldBytes);
    }
}
