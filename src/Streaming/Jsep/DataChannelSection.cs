using System.Globalization;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Jsep;

/// <summary>How an <c>m=application</c> section describes a WebRTC data channel.</summary>
public enum DataChannelSdpForm
{
    /// <summary>
    /// RFC 8841 (and RFC 8829 section 5.2.1): <c>m=application 9 UDP/DTLS/SCTP webrtc-datachannel</c> (or
    /// <c>TCP/DTLS/SCTP</c>) with <c>a=sctp-port</c>. Our offers always use it.
    /// </summary>
    Rfc8841,

    /// <summary>
    /// The form before RFC 8841 (draft-ietf-mmusic-sctp-sdp-05 and earlier): <c>m=application 9 DTLS/SCTP 5000</c>
    /// with <c>a=sctpmap:5000 webrtc-datachannel N</c>, where the format is the SCTP port. aiortc 1.4 offers it;
    /// libwebrtc and pion still accept it and answer in the same form, and so do we.
    /// </summary>
    Sctpmap,
}

/// <summary>Reads and writes the data channel section in either of its forms.</summary>
internal static class DataChannelSection
{
    internal const string Format = "webrtc-datachannel";
    internal const string UdpProfile = "UDP/DTLS/SCTP";
    internal const string TcpProfile = "TCP/DTLS/SCTP";
    internal const string LegacyProfile = "DTLS/SCTP";

    // RFC 8841 section 5.2: without a=sctp-port, the SCTP port is 5000.
    internal const int DefaultSctpPort = 5000;

    /// <summary>
    /// Whether <paramref name="m"/> (an application section) describes a data channel we can run; if so its form and the
    /// remote SCTP port, otherwise why not (for the answer's rejection and the error a signaling layer returns).
    /// </summary>
    internal static bool TryRead(MediaDescription m, out DataChannelSdpForm form, out int sctpPort, out string refusal)
    {
        form = DataChannelSdpForm.Rfc8841;
        sctpPort = DefaultSctpPort;
        refusal = "";
        if (m.Protocol is UdpProfile or TcpProfile)
        {
            if (!m.Formats.Contains(Format))
            {
                refusal = $"its format is '{string.Join(' ', m.Formats)}', not {Format} (RFC 8841 section 4.1)";
                return false;
            }
            sctpPort = m.GetSctpPort() ?? DefaultSctpPort;
            return true;
        }
        if (m.Protocol == LegacyProfile)
        {
            // The format names the SCTP port, and a=sctpmap for that port names the application.
            foreach (var value in m.GetAttributes("sctpmap"))
            {
                var fields = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length >= 2 && fields[1] == Format && m.Formats.Contains(fields[0]) &&
                    int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
                {
                    form = DataChannelSdpForm.Sctpmap;
                    sctpPort = port;
                    return true;
                }
            }
            refusal = $"{LegacyProfile} needs a=sctpmap:PORT {Format} for its format '{string.Join(' ', m.Formats)}'";
            return false;
        }
        refusal = $"protocol {m.Protocol} is not a data channel transport ({UdpProfile}, {TcpProfile} or {LegacyProfile})";
        return false;
    }

    /// <summary>
    /// The m= line of our data channel section in <paramref name="form"/>: RFC 8841 with <paramref name="profile"/> (the
    /// offer's: RFC 8829 section 5.3.1 wants the answer's proto to match it), or <c>DTLS/SCTP</c> with our SCTP port as
    /// the format. <see cref="AddSctpAttributes"/> completes it.
    /// </summary>
    internal static MediaDescription Create(DataChannelSdpForm form, string profile, int sctpPort) =>
        form == DataChannelSdpForm.Sctpmap
            ? new MediaDescription("application", 9, LegacyProfile, [sctpPort.ToString(CultureInfo.InvariantCulture)])
            : new MediaDescription("application", 9, profile, [Format]);

    /// <summary>
    /// <c>a=sctp-port</c> (RFC 8841 section 5), or in the older form <c>a=sctpmap:PORT webrtc-datachannel STREAMS</c>
    /// with the number of streams we ask for, as libwebrtc writes it.
    /// </summary>
    internal static void AddSctpAttributes(MediaDescription m, DataChannelSdpForm form, int sctpPort, int streams)
    {
        var port = sctpPort.ToString(CultureInfo.InvariantCulture);
        if (form == DataChannelSdpForm.Sctpmap) m.AddAttribute("sctpmap", $"{port} {Format} {streams.ToString(CultureInfo.InvariantCulture)}");
        else m.AddAttribute("sctp-port", port);
    }
}
