using System.Runtime.InteropServices;

namespace Bowline.Commands;

/// <summary>
/// Turns SIGINT (Ctrl-C) and SIGTERM into a cancellation and cancels the default termination, so <c>up</c> lives on to
/// stop its children and clean up. Repeated signals are absorbed: the stop is already bounded.
/// </summary>
public sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _signalled = new();
    private readonly PosixSignalRegistration[] _registrations;

    public ShutdownSignals()
    {
        _registrations = [Register(PosixSignal.SIGINT), Register(PosixSignal.SIGTERM)];
    }

    public CancellationToken Token => _signalled.Token;

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
        _signalled.Dispose();
    }

    private PosixSignalRegistration Register(PosixSignal signal) => PosixSignalRegistration.Create(signal, context =>
    {
        context.Cancel = true;
        try
        {
            _signalled.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // A signal that raced with the end of `up`.
        }
    });
}
