using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Transport.Ice.Stun;

namespace Transport.Samples.StunProbe;

/// <summary>
/// Sends one STUN Binding request (RFC 8489) to a server and prints the mapped address and the round-trip time.
/// Usage: <c>StunProbe host:port [--rto ms] [--requests n]</c>. Exit codes: 0 answered, 1 timed out or error
/// response, 2 bad arguments. The sans-IO <see cref="StunClientTransaction"/> decides when to (re)send; this
/// program only owns the socket and the clock.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length < 1 || !TryParseServer(args[0], out var server))
        {
            Console.Error.WriteLine("usage: StunProbe host:port [--rto ms] [--requests n]   e.g. StunProbe 127.0.0.1:3478");
            return 2;
        }
        var options = new StunRetransmissionOptions { MaxRequests = 5 };
        for (var i = 1; i + 1 < args.Length; i += 2)
        {
            if (!int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value <= 0)
            {
                Console.Error.WriteLine($"bad value for {args[i]}: {args[i + 1]}");
                return 2;
            }
            options = args[i] switch
            {
                "--rto" => options with { InitialRto = TimeSpan.FromMilliseconds(value) },
                "--requests" => options with { MaxRequests = value },
                _ => null!,
            };
            if (options is null) { Console.Error.WriteLine($"unknown option {args[i]}"); return 2; }
        }

        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));

        Span<byte> transactionId = stackalloc byte[StunHeader.TransactionIdSize];
        StunTransactionId.NewRandom().WriteTo(transactionId);
        var buffer = new byte[1500];
        var writer = new StunMessageWriter(buffer, StunMessageType.BindingRequest, transactionId);
        writer.AddString(StunAttributeType.Software, "Transport StunProbe");
        writer.AddFingerprint();
        var transaction = new StunClientTransaction(buffer.AsSpan(0, writer.Length), options);

        var clock = Stopwatch.StartNew();
        transaction.Start(clock.Elapsed);
        while (true)
        {
            while (transaction.TryPollTransmit(buffer, out var n))
            {
                socket.SendTo(buffer.AsSpan(0, n), SocketFlags.None, server);
                Console.WriteLine($"{clock.Elapsed.TotalSeconds,7:F3} s  sent Binding request #{transaction.RequestsSent} to {server}");
            }
            if (transaction.PollTimeout() is not { } due) break;
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.Zero && socket.Poll((int)Math.Ceiling(wait.TotalMicroseconds), SelectMode.SelectRead))
            {
                int received;
                try { received = socket.Receive(buffer); }
                catch (SocketException e) { Console.WriteLine($"{clock.Elapsed.TotalSeconds,7:F3} s  {e.SocketErrorCode}"); continue; }
                if (!StunMessage.TryRead(buffer.AsSpan(0, received), out var response)) continue;
                if (transaction.HandleResponse(response, clock.Elapsed) != StunResponseMatch.Completed) continue;
                return Report(transaction, response);
            }
            transaction.HandleTimeout(clock.Elapsed);
        }
        Console.WriteLine($"timeout: no response from {server} after {transaction.RequestsSent} requests ({transaction.CompletedAt?.TotalSeconds:F1} s)");
        return 1;
    }

    private static int Report(StunClientTransaction transaction, in StunMessage response)
    {
        var rtt = transaction.RoundTripTime is { } r ? $"{r.TotalMilliseconds:F3} ms" : $"n/a (answered after {transaction.RequestsSent} requests)";
        if (response.Class == StunClass.ErrorResponse)
        {
            response.TryGetErrorCode(out var code, out var reason);
            Console.WriteLine($"error response {code} {System.Text.Encoding.UTF8.GetString(reason)}, rtt {rtt}");
            return 1;
        }
        var mapped = response.TryGetXorMappedAddress(out var xor) ? xor.ToString()
            : response.TryGetMappedAddress(out var plain) ? plain + " (MAPPED-ADDRESS)" : "(none)";
        var fingerprint = !response.HasFingerprint ? "none" : response.CheckFingerprint() ? "ok" : "BAD";
        Console.WriteLine($"mapped address {mapped}");
        Console.WriteLine($"rtt {rtt}");
        Console.WriteLine($"fingerprint {fingerprint}");
        return 0;
    }

    private static bool TryParseServer(string text, out IPEndPoint server)
    {
        if (IPEndPoint.TryParse(text, out var parsed) && parsed.Port != 0) { server = parsed; return true; }
        server = null!;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var port) || port == 0) return false;
        try
        {
            var addresses = Dns.GetHostAddresses(text.Substring(0, colon));
            if (addresses.Length == 0) return false;
            server = new IPEndPoint(addresses[0], port);
            return true;
        }
        catch (SocketException) { return false; }
    }
}
