using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

/// <summary>
/// Reception statistics of one source (RFC 3550 appendix A.1, A.3 and A.8): extended highest sequence number,
/// cumulative and interval fraction lost, interarrival jitter, and the LSR/DLSR of the source's last SR.
/// </summary>
public sealed class ReceiveStatistics
{
    private const int MaxDropout = 3000;
    private const int MaxMisorder = 100;
    private const int SequenceModulo = 1 << 16;

    private readonly int _clockRate;
    private bool _started;
    private ushort _maxSequence;
    private uint _cycles;
    private uint _baseSequence;
    private uint _badSequence = SequenceModulo + 1;
    private long _received;
    private long _expectedPrior;
    private long _receivedPrior;
    private double _jitter;
    private bool _haveTransit;
    private long _lastTransit;
    private uint _lastSrCompact;
    private TimeSpan _lastSrArrival;
    private bool _haveSr;

    /// <summary>Creates statistics for <paramref name="ssrc"/> with an RTP clock of <paramref name="clockRate"/> Hz.</summary>
    public ReceiveStatistics(uint ssrc, int clockRate)
    {
        if (clockRate <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(clockRate));
        }

        Ssrc = ssrc;
        _clockRate = clockRate;
    }

    /// <summary>The source.</summary>
    public uint Ssrc { get; }

    /// <summary>Packets received (duplicates included, as RFC 3550 counts them).</summary>
    public long PacketsReceived => _received;

    /// <summary>Extended highest sequence number received: cycles * 2^16 + max sequence.</summary>
    public uint ExtendedHighestSequence => _cycles + _maxSequence;

    /// <summary>Packets expected since the first one.</summary>
    public long Expected => _started ? (long)ExtendedHighestSequence - _baseSequence + 1 : 0;

    /// <summary>Cumulative packets lost (may be negative with duplicates).</summary>
    public long CumulativeLost => Expected - _received;

    /// <summary>Interarrival jitter estimate in RTP timestamp units (RFC 3550 section 6.4.1).</summary>
    public uint Jitter => (uint)_jitter;

    /// <summary>Records an arriving packet (RFC 3550 appendix A.1 update_seq and A.8 jitter).</summary>
    public void OnPacket(ushort sequence, uint rtpTimestamp, TimeSpan arrival)
    {
        if (!_started)
        {
            _started = true;
            _maxSequence = sequence;
            _baseSequence = sequence;
            _cycles = 0;
        }
        else
        {
            ushort delta = (ushort)(sequence - _maxSequence);
            if (delta < MaxDropout)
            {
                if (sequence < _maxSequence)
                {
                    _cycles += SequenceModulo; // wrapped
                }

                _maxSequence = sequence;
            }
            else if (delta <= SequenceModulo - MaxMisorder)
            {
                // A very large jump: restart only if two sequential packets confirm it (A.1).
                if (sequence == _badSequence)
                {
                    _started = false;
                    _badSequence = SequenceModulo + 1;
                    _received = 0;
                    _expectedPrior = 0;
                    _receivedPrior = 0;
                    OnPacket(sequence, rtpTimestamp, arrival);
                    return;
                }

                _badSequence = (uint)((sequence + 1) & (SequenceModulo - 1));
                return;
            }

            // else: duplicate or reordered within MaxMisorder, counted below.
        }

        _received++;

        // A.8: transit = arrival (in RTP units) - RTP timestamp; J += (|D| - J) / 16.
        long arrivalUnits = arrival.Ticks * _clockRate / TimeSpan.TicksPerSecond;
        long transit = arrivalUnits - rtpTimestamp;
        if (_haveTransit)
        {
            long d = transit - _lastTransit;
            // The RTP timestamp wraps at 2^32: fold the difference back into the signed 32-bit range.
            d = (int)(uint)(ulong)d;
            _jitter += (Math.Abs(d) - _jitter) / 16.0;
        }

        _lastTransit = transit;
        _haveTransit = true;
    }

    /// <summary>Records a sender report from this source, for the LSR/DLSR of the next report block.</summary>
    public void OnSenderReport(in SenderInfo info, TimeSpan arrival)
    {
        _lastSrCompact = info.CompactNtp;
        _lastSrArrival = arrival;
        _haveSr = true;
    }

    /// <summary>
    /// Builds a report block (RFC 3550 section 6.4.1 and appendix A.3) and starts a new fraction-lost interval.
    /// </summary>
    public ReportBlock CreateReportBlock(TimeSpan now)
    {
        long expected = Expected;
        long expectedInterval = expected - _expectedPrior;
        long receivedInterval = _received - _receivedPrior;
        _expectedPrior = expected;
        _receivedPrior = _received;
        long lostInterval = expectedInterval - receivedInterval;
        byte fraction = expectedInterval == 0 || lostInterval <= 0 ? (byte)0 : (byte)Math.Min(255, (lostInterval << 8) / expectedInterval);
        int cumulative = (int)Math.Clamp(CumulativeLost, -0x80_0000, 0x7F_FFFF);
        uint dlsr = _haveSr ? NtpTime.ToCompactDuration(now - _lastSrArrival) : 0;
        return new ReportBlock(Ssrc, fraction, cumulative, ExtendedHighestSequence, Jitter, _haveSr ? _lastSrCompact : 0, dlsr);
    }
}
